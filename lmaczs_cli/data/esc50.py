"""ESC-50 in its own layout: ``ROOT/meta/esc50.csv`` and ``ROOT/audio/<filename>``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lmaczs_cli.data.items import (
    AudioItem,
    DirIndex,
    LoadReport,
    check_folds,
    check_root,
    finish,
    parse_bool,
    read_csv,
    row_int,
)
from lmaczs_cli.data.prompts import label_text
from lmaczs_cli.errors import UsageError

COLUMNS = ("filename", "fold", "target", "category", "esc10")
HINT = "is --data-root an ESC-50 folder (meta/esc50.csv, audio/)?"


def load_esc50(root: Path | str, folds: int | Iterable[int] | None = None, esc10: bool = False) -> LoadReport:
    """ESC-50 clips (CSV order), optionally only some ``folds`` (1-5) or the ESC-10 subset.

    ``label`` and ``texts`` hold the category as text ("crying baby"); ``meta``
    has ``fold``, ``target``, ``category``, ``esc10``, ``src_file``, ``take``.
    """
    root = check_root(root, "an ESC-50 folder with meta/esc50.csv and audio/")
    wanted = check_folds(folds, range(1, 6), "ESC-50")
    csv_path = root / "meta" / "esc50.csv"
    rows = read_csv(csv_path, COLUMNS, HINT)
    audio = root / "audio"
    if not audio.is_dir():
        raise UsageError(f"{audio} not found: {HINT}")
    index = DirIndex(audio)
    items: list[AudioItem] = []
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        fold = row_int(csv_path, line, row, "fold")
        is_esc10 = parse_bool(row["esc10"])
        if (wanted is not None and fold not in wanted) or (esc10 and not is_esc10):
            continue
        name = row["filename"]
        if not name:
            raise UsageError(f"{csv_path}: line {line}: empty filename")
        path = index.find(name)
        if path is None:
            missing.append(str(audio / name))
            continue
        text = label_text(row["category"])
        meta = {
            "fold": fold,
            "target": row_int(csv_path, line, row, "target"),
            "category": row["category"],
            "esc10": is_esc10,
            "src_file": row.get("src_file", ""),
            "take": row.get("take", ""),
        }
        items.append(AudioItem(path=str(path), texts=(text,), label=text, meta=meta))
    return finish("esc10" if esc10 else "esc50", items, missing, csv_path)
