"""AudioCaps in its own layout: ``ROOT/<split>.csv``, ``ROOT/audio/<split>/<youtube_id>_<start_time>.wav``."""

from __future__ import annotations

from pathlib import Path

from lmaczs_cli.data.items import AudioItem, DirIndex, LoadReport, check_root, finish, read_csv
from lmaczs_cli.errors import UsageError

SPLITS = ("train", "val", "test")
ALIASES = {"valid": "val", "validation": "val", "development": "train", "evaluation": "test"}
COLUMNS = ("youtube_id", "start_time", "caption")
EXTENSIONS = (".wav", ".flac")


def audiocaps_split(split: str | None) -> str:
    """An AudioCaps split name from ``split`` (default train)."""
    s = (split or "train").strip().lower()
    s = ALIASES.get(s, s)
    if s not in SPLITS:
        raise UsageError(f"AudioCaps split {split!r}: expected one of {', '.join(SPLITS)}")
    return s


def _stems(youtube_id: str, start_time: str) -> list[str]:
    """File stems to try: the start time as written, then as an integer ("30.0" -> "30")."""
    stems = [f"{youtube_id}_{start_time}"]
    try:
        as_int = str(int(float(start_time)))
    except ValueError:
        return stems
    if as_int != start_time:
        stems.append(f"{youtube_id}_{as_int}")
    return stems


def load_audiocaps(root: Path | str, split: str = "train") -> LoadReport:
    """AudioCaps clips of ``split`` the user has: one item per clip, all its captions in ``texts``.

    A clip is ``<youtube_id>_<start_time>.wav`` (or ``.flac``). Clips the CSV
    lists but that are not on disk (usual: YouTube videos vanish) are counted
    in ``missing`` under their expected ``.wav`` path. ``label`` is None;
    ``meta``: ``split``, ``youtube_id``, ``start_time``, ``audiocap_ids``.
    """
    split = audiocaps_split(split)
    hint = f"is --data-root an AudioCaps folder ({split}.csv, audio/{split}/)?"
    root = check_root(root, f"an AudioCaps folder with {split}.csv and audio/{split}/")
    csv_path = root / f"{split}.csv"
    rows = read_csv(csv_path, COLUMNS, hint)
    audio = root / "audio" / split
    if not audio.is_dir():
        raise UsageError(f"{audio} not found: {hint}")
    index = DirIndex(audio)
    clips: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for line, row in enumerate(rows, start=2):
        if not row["youtube_id"] or not row["start_time"]:
            raise UsageError(f"{csv_path}: line {line}: empty youtube_id or start_time")
        caps, ids = clips.setdefault((row["youtube_id"], row["start_time"]), ([], []))
        if row["caption"] and row["caption"] not in caps:
            caps.append(row["caption"])
        if row.get("audiocap_id"):
            ids.append(row["audiocap_id"])
    items: list[AudioItem] = []
    missing: list[str] = []
    for (yid, start), (caps, ids) in clips.items():
        stems = _stems(yid, start)
        path = next((p for s in stems for e in EXTENSIONS if (p := index.find(s + e))), None)
        if path is None:
            missing.append(str(audio / f"{stems[0]}.wav"))
            continue
        meta = {"split": split, "youtube_id": yid, "start_time": start, "audiocap_ids": tuple(ids)}
        items.append(AudioItem(path=str(path), texts=tuple(caps), label=None, meta=meta))
    return finish(f"audiocaps {split}", items, missing, csv_path)
