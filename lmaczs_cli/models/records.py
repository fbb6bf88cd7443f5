"""What a model family is, as data: :class:`Family` (its record) and :class:`Artifact` (a file it can
be downloaded as). Import-light: no torch, no network; each family's ``models/<family>/family.py``
builds its record from these, :mod:`lmaczs_cli.models.families` registers them."""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Artifact:
    """A downloadable file: where from, and what it must look like (size, SHA-256 where known)."""

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    description: str = ""


def _call(target: str, *args: Any) -> Any:
    module, func = target.split(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
    return fn(*args)


@dataclass(frozen=True)
class Family:
    """One family of zero-shot models: what the rest of lmaczs asks of it.

    Hooks are ``"module:function"`` strings, imported only when called, so reading a record
    costs nothing (no torch).
    """

    #: short name, e.g. ``"laion"``
    name: str
    #: the ``--clap`` names it owns, as shell-style patterns (``"small"``, ``"laion-*"``, ``"hf:*"``)
    patterns: tuple[str, ...]
    #: its line in ``--clap``'s help: what it is and the names it takes
    help: str = ""
    #: ``f(clap, ckpt, tokenizer_dir) -> [what is missing]``: the files that must be on disk (None: none)
    preflight: str | None = None
    #: its ``lmaczs train --preset``; ``presets_by_name``: names with a preset of their own
    preset: str | None = None
    presets_by_name: dict[str, str] = field(default_factory=dict)
    #: its checkpoint catalogue: the files ``lmaczs download clap NAME`` knows (and ``--list`` shows)
    checkpoints: tuple[Artifact, ...] = ()
    #: ``--clap`` name -> its default checkpoint in :attr:`checkpoints` (``lmaczs download clap NAME``)
    aliases: dict[str, str] = field(default_factory=dict)
    #: tokenizer name -> its files (``lmaczs download tokenizer NAME``)
    tokenizers: dict[str, tuple[Artifact, ...]] = field(default_factory=dict)
    #: ``--clap`` names ``<hub_prefix><owner/name>`` are Hugging Face hub repos (``lmaczs download clap``
    #: fetches them into the hub cache; a decoder card names them as its base model)
    hub_prefix: str | None = None
    #: ``f(clap) -> set[str]``: the other names a model built for ``--clap clap`` may carry (decoder registry)
    names: str | None = None
    #: its weights ship with lmaczs: it runs offline with nothing downloaded
    bundled: bool = False
    #: what a warning about clips unlike its training audio adds
    domain_note: str = ""

    def owns(self, clap: str) -> bool:
        return any(fnmatch.fnmatchcase(clap, p) for p in self.patterns)

    def missing(self, clap: str, ckpt: str | None, tokenizer_dir: Path | str | None) -> list[str]:
        """What a run of ``clap`` lacks on this machine (checkpoint, tokenizer files ...)."""
        return [] if self.preflight is None else list(_call(self.preflight, clap, ckpt, tokenizer_dir))

    def preset_for(self, clap: str) -> str | None:
        return self.presets_by_name.get(clap, self.preset)

    def hub_repo(self, clap: str) -> str | None:
        """The hub repo id ``clap`` names (``hf:owner/name`` -> ``owner/name``), else None."""
        if self.hub_prefix and clap.startswith(self.hub_prefix):
            return clap[len(self.hub_prefix):]
        return None

    def names_of(self, clap: str) -> set[str]:
        """``clap`` and the other names a model built for it may carry."""
        return {clap} | (set(_call(self.names, clap)) if self.names else set())
