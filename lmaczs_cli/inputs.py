"""Collect the audio inputs of a batch command: files, folders (recursive), lists, stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from lmaczs_cli.audio import find_audio_files
from lmaczs_cli.errors import UsageError


def collect_inputs(paths: Iterable[Path], files_from: str | None = None) -> list[Path]:
    """Expand positional paths and ``--files-from FILE|-`` into a de-duplicated list.

    Folders expand to the audio files below them; a listed file that does not
    exist is kept, so the batch reports it as a failed input and goes on.
    """
    out: list[Path] = []
    for p in paths:
        out.extend(find_audio_files(p) if p.is_dir() else [p])
    if files_from is not None:
        out.extend(_read_list(files_from))
    seen: set[str] = set()
    unique = []
    for p in out:
        key = str(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise UsageError("no audio inputs: give files, folders, or --files-from FILE|-")
    return unique


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
