"""Collect the audio inputs of a batch command: files, folders (recursive), lists, stdin."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmaczs_cli.errors import UsageError

#: extensions picked up when a folder is given as input
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".mp3", ".au",
     ".snd", ".caf", ".w64", ".rf64"}
)


def find_audio_files(root: Path) -> list[Path]:
    """Audio files below ``root`` (recursive, by extension), sorted for reproducibility.

    Links that lead nowhere (dangling, or a loop) are kept, so they fail with their reason."""
    return sorted(
        p for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.suffix.lower() in AUDIO_EXTENSIONS
    )


@dataclass(frozen=True)
class InputProblem:
    """An input that yields no clip (e.g. a folder with no audio files), reported as a failed input."""

    path: str
    reason: str


@dataclass
class Inputs:
    """The clips to process, in order, and the named inputs that gave none."""

    paths: list[Path]
    problems: list[InputProblem] = field(default_factory=list)


def collect_inputs(paths: Iterable[Path], files_from: str | None = None) -> Inputs:
    """Expand positional paths and ``--files-from FILE|-`` into a de-duplicated list.

    Folders expand to the audio files below them; a folder holding none is a
    problem (a failed input). A listed file that does not exist is kept, so the
    batch reports it as a failed input and goes on. Nothing at all is a usage error.
    Paths come back absolute and resolved, so one file is one clip (one row in a
    results table) however it was named: relative, absolute or through a link.
    """
    out: list[Path] = []
    problems: list[InputProblem] = []
    for p in paths:
        if p.is_dir():
            found = find_audio_files(p)
            out.extend(found)
            if not found:
                problems.append(InputProblem(str(_canonical(p)), f"{p}: folder holds no audio files"))
        else:
            out.append(p)
    if files_from is not None:
        out.extend(_read_list(files_from))
    unique = list(dict.fromkeys(_canonical(p) for p in out))
    if not unique and not problems:
        raise UsageError("no audio inputs: give files, folders, or --files-from FILE|-")
    return Inputs(unique, problems)


def shard_inputs(inputs: Inputs, shard: Any) -> Inputs:
    """The share of ``inputs`` a :class:`~lmaczs_cli.sharding.Shard` takes; inputs that gave no clip
    are reported by the first share only."""
    return Inputs(shard.take(inputs.paths), list(inputs.problems) if shard.first else [])


def _canonical(p: Path) -> Path:
    """``p`` resolved through its links when it leads to a file; else the absolute name given.

    A dangling link or a symlink loop keeps the user's own name, so its error row names what
    they typed (not the link's target), and a loop never raises here.
    """
    try:
        if p.exists():
            return p.resolve()
    except (OSError, RuntimeError):
        pass
    return Path(os.path.abspath(p))


def _read_list(spec: str) -> list[Path]:
    """One path per line (relative to the working directory); blanks and # comments skipped."""
    if spec == "-":
        text = sys.stdin.read()
    else:
        f = Path(spec)
        if not f.is_file():
            raise UsageError(f"--files-from {spec}: file not found")
        text = f.read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [Path(line) for line in lines if line and not line.startswith("#")]
