"""The model files ``lmaczs download clap`` and ``lmaczs download tokenizer`` know: URLs, sizes, digests.

No network here, and no catalogue of its own: each model family's record carries its checkpoints,
the model names that stand for a default checkpoint and its tokenizer files
(``lmaczs_cli/models/<family>/family.py``, :mod:`lmaczs_cli.models.families`); this module reads
them. :func:`clap_artifact` turns a name (or an alias such as ``ms-clap-2022``, or an ad-hoc
``--url``) into the :class:`Artifact` that :func:`lmaczs_cli.downloads.fetch.download` then
fetches and checks.
"""

from __future__ import annotations

from pathlib import Path

from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.families import list_families
from lmaczs_cli.models.records import Artifact

__all__ = ["Artifact", "clap_aliases", "clap_artifact", "clap_checkpoints", "default_clap_checkpoint",
           "tokenizer_files", "tokenizer_names"]


def clap_checkpoints() -> dict[str, Artifact]:
    """Every family's checkpoints: file name -> :class:`Artifact` (``lmaczs download clap --list``)."""
    return {a.name: a for f in list_families() for a in f.checkpoints}


def clap_aliases() -> dict[str, str]:
    """Model names accepted by ``lmaczs download clap`` for their default checkpoint -> its file name."""
    return {name: file for f in list_families() for name, file in f.aliases.items()}


def default_clap_checkpoint() -> str:
    """The default model's default checkpoint (what ``lmaczs download clap`` fetches with no name)."""
    from lmaczs_cli.runtime import DEFAULT_MODEL

    return clap_aliases()[DEFAULT_MODEL]


def tokenizer_names() -> tuple[str, ...]:
    """The names ``lmaczs download tokenizer NAME`` knows."""
    return tuple(name for f in list_families() for name in f.tokenizers)


def tokenizer_files(name: str) -> dict[str, Artifact]:
    """The files of tokenizer ``name`` (one of :func:`tokenizer_names`)."""
    for f in list_families():
        if name in f.tokenizers:
            return {a.name: a for a in f.tokenizers[name]}
    raise UsageError(f"unknown tokenizer {name!r}; choose one of: {', '.join(tokenizer_names())}")


def clap_artifact(name: str, url: str | None = None, sha256: str | None = None) -> Artifact:
    """The catalogue entry for ``name`` (or an ad-hoc one when ``url`` is given)."""
    if Path(name).name != name or not name:
        raise UsageError(f"checkpoint name {name!r} must be a plain file name")
    aliases, checkpoints = clap_aliases(), clap_checkpoints()
    name = aliases.get(name, name)
    known = checkpoints.get(name)
    if url:
        same = known is not None and known.url == url
        return Artifact(
            name, url, known.size if same else None, sha256 or (known.sha256 if same else None)
        )
    if known is None:
        names = ", ".join([*aliases, *checkpoints])
        raise UsageError(f"unknown checkpoint {name!r}; choose one of: {names} (or pass --url)")
    if sha256:
        return Artifact(known.name, known.url, known.size, sha256, known.description)
    return known
