"""Clotho v2 in its own layout: ``ROOT/clotho_captions_<split>.csv`` and ``ROOT/<split>/<file_name>``."""

from __future__ import annotations

from pathlib import Path

from lmaczs_cli.data.items import AudioItem, DirIndex, LoadReport, check_root, finish, read_csv
from lmaczs_cli.errors import UsageError

SPLITS = ("development", "validation", "evaluation")
#: short names accepted for ``--split``
ALIASES = {
    "train": "development",
    "dev": "development",
    "val": "validation",
    "valid": "validation",
    "test": "evaluation",
    "eval": "evaluation",
}
CAPTION_COLUMNS = tuple(f"caption_{i}" for i in range(1, 6))


def clotho_split(split: str | None) -> str:
    """A Clotho split name from ``split`` (default development; train/val/test accepted)."""
    s = (split or "development").strip().lower()
    s = ALIASES.get(s, s)
    if s not in SPLITS:
        raise UsageError(f"Clotho split {split!r}: expected one of {', '.join(SPLITS)} (or train, val, test)")
    return s


def load_clotho(root: Path | str, split: str = "development") -> LoadReport:
    """Clotho clips of ``split``: one item per file with all its captions in ``texts``.

    File names may hold spaces, commas and non-ASCII characters (matched up to
    Unicode normalisation). ``label`` is None; ``meta``: ``split``, ``file_name``.
    """
    split = clotho_split(split)
    hint = f"is --data-root a Clotho folder (clotho_captions_{split}.csv, {split}/)?"
    root = check_root(root, f"a Clotho folder with clotho_captions_{split}.csv and {split}/")
    csv_path = root / f"clotho_captions_{split}.csv"
    rows = read_csv(csv_path, ("file_name", "caption_1"), hint)
    audio = root / split
    if not audio.is_dir():
        raise UsageError(f"{audio} not found: {hint}")
    index = DirIndex(audio)
    captions: dict[str, list[str]] = {}
    for line, row in enumerate(rows, start=2):
        name = row["file_name"]
        if not name:
            raise UsageError(f"{csv_path}: line {line}: empty file_name")
        caps = captions.setdefault(name, [])
        caps += [row[c] for c in CAPTION_COLUMNS if row.get(c) and row[c] not in caps]
    items: list[AudioItem] = []
    missing: list[str] = []
    for name, caps in captions.items():
        path = index.find(name)
        if path is None:
            missing.append(str(audio / name))
            continue
        meta = {"split": split, "file_name": name}
        items.append(AudioItem(path=str(path), texts=tuple(caps), label=None, meta=meta))
    return finish(f"clotho {split}", items, missing, csv_path)
