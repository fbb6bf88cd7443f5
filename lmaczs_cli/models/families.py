"""Model families as records (issue #28 item 1): what the rest of lmaczs asks of a family is
derived from its :class:`~lmaczs_cli.models.records.Family`, never from switches on name prefixes.

Each family lives in one folder, ``models/<family>/`` (model, checkpoint reading, text side,
upstream/reference loaders), and describes itself in ``models/<family>/family.py``: which
``--clap`` names are its own (shell-style patterns), the files that must be on disk (preflight),
its checkpoint catalogue and tokenizer files, its ``lmaczs train`` preset and its ``--clap`` help
line. Derived from the records: :func:`lmaczs_cli.preflight.check_ready` (what is missing),
:mod:`lmaczs_cli.downloads.models` (``lmaczs download clap``/``tokenizer`` and ``--list``), the
``--clap`` help (:func:`clap_help`) and :func:`lmaczs_cli.jobs.train.presets.preset_for_model`.
A new family is a folder, a record registered here (or by :func:`register_family`) and its
factories in :mod:`lmaczs_cli.models.registry`. Import-light: no torch.
"""

from __future__ import annotations

from lmaczs_cli.models.hf.family import FAMILY as _HF
from lmaczs_cli.models.laion.family import FAMILY as _LAION
from lmaczs_cli.models.msclap.family import FAMILY as _MSCLAP
from lmaczs_cli.models.pe_audio.family import FAMILY as _PE_AUDIO
from lmaczs_cli.models.records import Artifact, Family
from lmaczs_cli.models.small.family import FAMILY as _SMALL

__all__ = ["Artifact", "Family", "clap_help", "family_of", "list_families", "register_family",
           "unregister_family"]

_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> None:
    """Add (or replace) a family; later registrations are matched first."""
    _FAMILIES.pop(family.name, None)
    _FAMILIES[family.name] = family


def unregister_family(name: str) -> None:
    _FAMILIES.pop(name, None)


def list_families() -> list[Family]:
    return list(_FAMILIES.values())


def family_of(clap: str) -> Family | None:
    """The family that owns ``--clap clap`` (the most recently registered match), or None."""
    for family in reversed(list(_FAMILIES.values())):
        if family.owns(clap):
            return family
    return None


def clap_help() -> str:
    """``--clap``'s help: each family's line (its names and what it is), in registration order."""
    return "Zero-shot model: " + "; ".join(f.help for f in list_families() if f.help) + "."


for _family in (_LAION, _MSCLAP, _HF, _PE_AUDIO, _SMALL):
    register_family(_family)
