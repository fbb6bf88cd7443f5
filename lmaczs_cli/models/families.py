"""Model families as records (issue #28 item 1, first step): what the rest of lmaczs asks of a
family is derived from its :class:`Family` instead of switches on name prefixes.

A family says which ``--clap`` names are its own (shell-style patterns, e.g. ``laion-*``),
what a run lacks on this machine before anything is built (``preflight``: a
``"module:function"`` called as ``f(clap, ckpt, tokenizer_dir) -> list[str]``, imported only
then), its ``lmaczs train`` preset and a help line. Derived from the records so far:
:func:`lmaczs_cli.preflight.check_ready` (missing files) and
:func:`lmaczs_cli.jobs.train.presets.preset_for_model`. Import-light: no torch.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Family:
    """One family of zero-shot models (see the module docstring)."""

    #: short name, e.g. ``"laion"``
    name: str
    #: the ``--clap`` names it owns, as shell-style patterns (``"small"``, ``"laion-*"``, ``"hf:*"``)
    patterns: tuple[str, ...]
    #: one line for listings and ``--clap`` help
    help: str = ""
    #: ``"module:function"``: ``f(clap, ckpt, tokenizer_dir) -> [what is missing]`` (None: nothing to check)
    preflight: str | None = None
    #: its ``lmaczs train --preset``; ``presets_by_name``: names with a preset of their own
    preset: str | None = None
    presets_by_name: dict[str, str] = field(default_factory=dict)

    def owns(self, clap: str) -> bool:
        return any(fnmatch.fnmatchcase(clap, p) for p in self.patterns)

    def missing(self, clap: str, ckpt: str | None, tokenizer_dir: Path | str | None) -> list[str]:
        """What a run of ``clap`` lacks on this machine (checkpoint, tokenizer files ...)."""
        if self.preflight is None:
            return []
        module, func = self.preflight.split(":")
        check: Callable[..., list[str]] = getattr(importlib.import_module(module), func)
        return list(check(clap, ckpt, tokenizer_dir))

    def preset_for(self, clap: str) -> str | None:
        return self.presets_by_name.get(clap, self.preset)


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


register_family(Family(
    "small", ("small",), "the bundled small CLAP-style model (offline)", preset="small"))
register_family(Family(
    "laion", ("laion-*",), "LAION-CLAP: laion-htsat-tiny, laion-htsat-base",
    preflight="lmaczs_cli.models.laion_checkpoint:preflight_missing", preset="laion"))
register_family(Family(
    "ms-clap", ("ms-clap-*",), "Microsoft CLAP: ms-clap-2022 (the paper's), ms-clap-2023",
    preflight="lmaczs_cli.models.msclap_checkpoint:preflight_missing", preset="ms-clap-2022",
    presets_by_name={"ms-clap-2023": "ms-clap-2023"}))
register_family(Family(
    "hf", ("hf:*", "hf-*"), "Hugging Face ClapModel: hf-htsat-tiny, hf-htsat-base, hf:<repo-id-or-folder>",
    preflight="lmaczs_cli.models.hf_source:preflight_missing", preset="hf"))
register_family(Family(
    "pe-audio", ("pe-audio", "pe-audio:*"),
    "Meta Perception Encoder audio (PeAudioModel): pe-audio, pe-audio:<repo-id-or-folder>",
    preflight="lmaczs_cli.models.pe_audio:preflight_missing", preset="hf"))
