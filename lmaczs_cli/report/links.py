"""Paths recorded by a run -> files on disk -> links relative to the report's folder.

A run records paths as it was given them: absolute, or relative to the folder it ran in.
:class:`Resolver` finds each file again even after the run folder was moved or copied:
an output (WAV, PNG, mask) is looked for inside the run folder first, by the longest tail
of its recorded path that exists there; an input clip relative to the run's working folder
is looked for from the working folder recorded in ``run.json`` (``cwd``, when present), the
working folders implied by the outputs found, the current folder and the run folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from urllib.parse import quote

#: audio containers that browsers play in an <audio> element
PLAYABLE = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".webm"}


def href(target: Path, base: Path) -> str:
    """``target`` as a URL relative to the folder ``base`` (may climb out with ``../``)."""
    rel = os.path.relpath(target, base)
    return quote(PurePath(rel).as_posix(), safe="/")


class Resolver:
    """Finds the files a run recorded, relative to ``run_dir`` (see the module docstring)."""

    def __init__(self, run_dir: Path, run_cwds: list[str] | None = None) -> None:
        self.run_dir = run_dir.resolve()
        self._roots: list[PurePath] = []  # recorded prefixes that stand for run_dir
        self._cwds: list[Path] = [Path(c) for c in run_cwds or [] if c]

    def output(self, recorded: str | None) -> Path | None:
        """An output file of the run (inside the run folder when it is there), or None."""
        if not recorded:
            return None
        p = PurePath(recorded)
        for root in self._roots:  # fast path: a prefix that matched before
            if _starts_with(p, root):
                hit = self.run_dir.joinpath(*p.parts[len(root.parts):])
                if hit.is_file():
                    return hit
        for k in range(len(p.parts)):
            hit = self.run_dir.joinpath(*p.parts[k:])
            if hit.is_file() and self.run_dir in hit.resolve().parents:
                self._learn(PurePath(*p.parts[:k]) if k else PurePath())
                return hit
        return self.anywhere(recorded)

    def _learn(self, root: PurePath) -> None:
        if root not in self._roots:
            self._roots.append(root)
        if root.parts and not root.is_absolute():  # run_dir == <run's cwd>/root
            tail = self.run_dir.parts[len(self.run_dir.parts) - len(root.parts):]
            if tuple(tail) == root.parts:
                cwd = Path(*self.run_dir.parts[:len(self.run_dir.parts) - len(root.parts)])
                if cwd not in self._cwds:
                    self._cwds.append(cwd)

    def anywhere(self, recorded: str | None) -> Path | None:
        """A file recorded by a run (e.g. an input clip), wherever it lies, or None."""
        if not recorded:
            return None
        p = Path(recorded)
        if p.is_absolute():
            return p if p.is_file() else None
        for base in (*self._cwds, Path.cwd(), self.run_dir):
            hit = base / p
            if hit.is_file():
                return hit.resolve()
        return None

    def link(self, path: Path | None) -> str | None:
        """The link to ``path`` from the report, or None when there is no file."""
        if path is None:
            return None
        n = len(self.run_dir.parts)
        if path.parts[:n] == self.run_dir.parts and ".." not in path.parts[n:]:  # fast: no realpath
            return quote(PurePath(*path.parts[n:]).as_posix(), safe="/")
        return href(path.resolve(), self.run_dir)


def _starts_with(p: PurePath, root: PurePath) -> bool:
    return p.parts[:len(root.parts)] == root.parts and len(p.parts) > len(root.parts)
