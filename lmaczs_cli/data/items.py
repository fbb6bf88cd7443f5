"""What every loader returns: audio items (path + texts + label) and a report of missing files.

Also the small, torch-free helpers the loaders share: reading a metadata CSV
with one-line errors, and looking file names up in a folder listing.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmaczs_cli.errors import UsageError


@dataclass(frozen=True)
class AudioItem:
    """One audio file of a data set.

    ``texts``: its captions (Clotho, AudioCaps: all of them) or its label's
    prompt text (``("crying baby",)``); ``label``: the class label text, or
    None for caption sets; ``meta``: set-specific fields (fold, class id,
    split, ...).
    """

    path: str
    texts: tuple[str, ...]
    label: str | None = None
    meta: dict = field(default_factory=dict, hash=False)


@dataclass
class LoadReport:
    """Items found on disk, and the files the metadata lists but that are absent."""

    items: list[AudioItem]
    missing: list[str] = field(default_factory=list)
    name: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def summary(self) -> str:
        """One line, e.g. ``"esc50: 2000 clips"`` or ``"audiocaps train: 45K clips, 3 missing"``."""
        text = f"{self.name or 'data'}: {len(self.items)} clips"
        if self.missing:
            text += f", {len(self.missing)} listed but missing (first: {self.missing[0]})"
        return text


# -- helpers shared by the loaders ---------------------------------------------


def check_root(root: Path | str, what: str) -> Path:
    """``root`` as a Path, or a UsageError if it is not an existing folder."""
    p = Path(root).expanduser()
    if not p.exists():
        raise UsageError(f"{p}: data root not found (expected {what})")
    if not p.is_dir():
        raise UsageError(f"{p}: data root is not a folder (expected {what})")
    return p


def read_csv(path: Path, required: Sequence[str], hint: str) -> list[dict[str, str]]:
    """Rows of a metadata CSV (UTF-8, BOM tolerated) with the ``required`` columns.

    ``hint`` finishes the "not found" message, e.g. "is --data-root an ESC-50 folder?".
    """
    if not path.is_file():
        raise UsageError(f"{path} not found: {hint}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except csv.Error as e:
        raise UsageError(f"{path}: not a valid CSV ({e})") from None
    lacking = [c for c in required if c not in header]
    if lacking:
        got = ",".join(header) if header else "nothing"
        raise UsageError(f"{path}: missing column(s) {', '.join(lacking)} (header has {got}): {hint}")
    return rows


def row_int(path: Path, line: int, row: dict[str, str], column: str) -> int:
    """``row[column]`` as an int (``"3"`` or ``"3.0"``), or a UsageError naming file and line."""
    value = row.get(column, "")
    try:
        f = float(value)
        if f != int(f):
            raise ValueError
        return int(f)
    except (ValueError, OverflowError):
        raise UsageError(f"{path}: line {line}: {column} {value!r} is not an integer") from None


def parse_bool(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "y", "t")


def check_folds(folds: int | Iterable[int] | None, valid: range, name: str) -> set[int] | None:
    """Normalise a fold selection, rejecting folds the set does not have."""
    if folds is None:
        return None
    wanted = {int(folds)} if isinstance(folds, int) else {int(f) for f in folds}
    if not wanted:
        return None
    bad = sorted(wanted - set(valid))
    if bad:
        raise UsageError(
            f"{name} has folds {valid.start}-{valid.stop - 1}; got fold(s) {', '.join(map(str, bad))}"
        )
    return wanted


class DirIndex:
    """A folder's file names, looked up exactly or up to Unicode normalisation (NFC/NFD)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            names = os.listdir(folder)
        except OSError:
            names = []
        self._names = set(names)
        self._nfc = {unicodedata.normalize("NFC", n): n for n in names}

    def find(self, name: str) -> Path | None:
        """The on-disk path of ``name`` in the folder, or None when absent."""
        if name in self._names:
            return self.folder / name
        real = self._nfc.get(unicodedata.normalize("NFC", name))
        return self.folder / real if real is not None else None


def finish(name: str, items: list[AudioItem], missing: list[str], listed_in: Path) -> LoadReport:
    """The report, or a UsageError when metadata lists files but none of them exist."""
    if not items and missing:
        raise UsageError(
            f"none of the {len(missing)} clips listed in {listed_in} were found "
            f"(first expected at {missing[0]})"
        )
    return LoadReport(items=items, missing=missing, name=name)
