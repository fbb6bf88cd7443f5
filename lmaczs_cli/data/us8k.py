"""UrbanSound8K in its own layout: ``ROOT/metadata/UrbanSound8K.csv``, ``ROOT/audio/fold<k>/``."""

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
    read_csv,
    row_int,
)
from lmaczs_cli.data.prompts import label_text
from lmaczs_cli.errors import UsageError

COLUMNS = ("slice_file_name", "fold", "classID", "class")
HINT = "is --data-root an UrbanSound8K folder (metadata/UrbanSound8K.csv, audio/fold1..10/)?"


def load_us8k(root: Path | str, folds: int | Iterable[int] | None = None) -> LoadReport:
    """UrbanSound8K clips (CSV order), optionally only some ``folds`` (1-10).

    Files stay as recorded (any rate, channels, bit depth); ``ClipDataset``
    converts them. ``label``/``texts``: the class as text ("dog bark");
    ``meta``: ``fold``, ``class_id``, ``class``, ``fsID``, ``start``, ``end``, ``salience``.
    """
    root = check_root(root, "an UrbanSound8K folder with metadata/UrbanSound8K.csv and audio/")
    wanted = check_folds(folds, range(1, 11), "UrbanSound8K")
    csv_path = root / "metadata" / "UrbanSound8K.csv"
    rows = read_csv(csv_path, COLUMNS, HINT)
    audio = root / "audio"
    if not audio.is_dir():
        raise UsageError(f"{audio} not found: {HINT}")
    indexes: dict[int, DirIndex] = {}
    items: list[AudioItem] = []
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        fold = row_int(csv_path, line, row, "fold")
        if wanted is not None and fold not in wanted:
            continue
        name = row["slice_file_name"]
        if not name:
            raise UsageError(f"{csv_path}: line {line}: empty slice_file_name")
        folder = audio / f"fold{fold}"
        if fold not in indexes:
            indexes[fold] = DirIndex(folder)
        path = indexes[fold].find(name)
        if path is None:
            missing.append(str(folder / name))
            continue
        text = label_text(row["class"])
        meta = {
            "fold": fold,
            "class_id": row_int(csv_path, line, row, "classID"),
            "class": row["class"],
            "fsID": row.get("fsID", ""),
            "start": row.get("start", ""),
            "end": row.get("end", ""),
            "salience": row.get("salience", ""),
        }
        items.append(AudioItem(path=str(path), texts=(text,), label=text, meta=meta))
    return finish("us8k", items, missing, csv_path)
