"""Anyone's own data: a CSV with ``path`` and ``caption`` and/or ``label`` (optional ``split``)."""

from __future__ import annotations

from pathlib import Path

from lmaczs_cli.data.items import AudioItem, LoadReport, finish, read_csv
from lmaczs_cli.errors import UsageError

HINT = "a manifest needs columns path and caption or label (optional split)"


def load_manifest(csv_path: Path | str, split: str | None = None) -> LoadReport:
    """Items of a manifest CSV; relative paths are resolved against the CSV's folder.

    Rows naming the same file are merged into one item holding all their
    captions. With ``caption`` the captions are the ``texts``; with only
    ``label`` the label is the text. ``split`` keeps only the rows of that
    split (the CSV then needs a ``split`` column). ``meta``: ``split`` if present.
    """
    csv_path = Path(csv_path).expanduser()
    if csv_path.is_dir():
        raise UsageError(f"{csv_path}: is a folder; the manifest data set takes a CSV file ({HINT})")
    rows = read_csv(csv_path, ("path",), HINT)
    if not rows:
        raise UsageError(f"{csv_path}: no rows: {HINT}")
    header = set(rows[0])
    if not header & {"caption", "label"}:
        raise UsageError(f"{csv_path}: no caption or label column: {HINT}")
    if split is not None:
        if "split" not in header:
            raise UsageError(f"{csv_path}: --split {split} given but the manifest has no split column")
        present = sorted({r["split"] for r in rows})
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise UsageError(
                f"{csv_path}: no rows with split {split!r} (splits present: {', '.join(present) or 'none'})"
            )
    base = csv_path.parent
    merged: dict[str, tuple[list[str], str | None, dict]] = {}
    for line, row in enumerate(rows, start=2):
        raw = row["path"]
        if not raw:
            raise UsageError(f"{csv_path}: line {line}: empty path")
        p = Path(raw).expanduser()
        key = str(p if p.is_absolute() else base / p)
        caption, label = row.get("caption", ""), row.get("label") or None
        if not caption and not label:
            raise UsageError(f"{csv_path}: line {line}: {raw}: neither caption nor label given")
        texts, first_label, meta = merged.setdefault(key, ([], label, {}))
        if label != first_label:
            raise UsageError(f"{csv_path}: line {line}: {raw} has labels {first_label!r} and {label!r}")
        text = caption or label
        if text and text not in texts:
            texts.append(text)
        if row.get("split"):
            meta["split"] = row["split"]
    items: list[AudioItem] = []
    missing: list[str] = []
    for key, (texts, label, meta) in merged.items():
        if not Path(key).is_file():
            missing.append(key)
            continue
        items.append(AudioItem(path=key, texts=tuple(texts), label=label, meta=meta))
    return finish("manifest" + (f" {split}" if split else ""), items, missing, csv_path)
