"""Data sets with strong labels (each event's onset and offset), in their publishers' layouts.

- **URBAN-SED** (Salamon et al. 2017; 10 000 soundscapes of UrbanSound8K's 10 classes)::

      ROOT/audio/{train,validate,test}/soundscape_test_unimodal0.wav
      ROOT/annotations/{train,validate,test}/soundscape_test_unimodal0.txt   # onset<TAB>offset<TAB>label

- **AudioGrounding** v2 (Xu et al. 2021; AudioCaps captions whose phrases carry their time
  spans)::

      ROOT/{train,val,test}.json     # [{"audio_id": "Y....wav", "tokens": "...", "phrases":
                                     #   [{"phrase": "a dog", "segments": [[0.5, 1.2], ...]}, ...]}]
      ROOT/audio/{train,val,test}/Y....wav     (or ROOT/{train,val,test}/Y....wav)

- **A strong-label CSV** (``filename,onset,offset,label``, one row per event, files relative to
  the CSV's folder; the DCASE format with commas).

Each clip is one :class:`AudioItem` whose ``meta["events"]`` lists ``(onset, offset, label)``
with the label as prompt text (``dog_bark`` -> ``dog bark``; a grounding phrase as written);
``label`` is the class that sounds longest in the clip (the clip's class for accuracy) and
``texts`` every class heard (a grounding clip: its caption).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from lmaczs_cli.data.items import AudioItem, DirIndex, LoadReport, check_root, finish
from lmaczs_cli.data.prompts import label_text
from lmaczs_cli.errors import UsageError

URBANSED_SPLITS = ("train", "validate", "test")
GROUNDING_SPLITS = ("train", "val", "test")
Event = tuple[float, float, str]


def _item(path: Path, events: list[Event], texts: Iterable[str] | None = None, **meta) -> AudioItem:
    """An item for a clip and its events (sorted by onset)."""
    events = sorted(events)
    length: dict[str, float] = defaultdict(float)
    for on, off, lab in events:
        length[lab] += off - on
    labels = list(dict.fromkeys(lab for _, _, lab in events))
    main = max(labels, key=lambda lab: (length[lab], -labels.index(lab))) if labels else None
    return AudioItem(path=str(path), texts=tuple(texts if texts is not None else labels), label=main,
                     meta={"events": events, **meta})


def _span(source: Path, where: str, onset: str, offset: str) -> tuple[float, float]:
    try:
        on, off = float(onset), float(offset)
    except ValueError:
        raise UsageError(f"{source}: {where}: onset/offset must be numbers, "
                         f"got {onset!r}, {offset!r}") from None
    if not (0 <= on <= off):
        raise UsageError(f"{source}: {where}: expected 0 <= onset <= offset, got {on} and {off}")
    return on, off


def load_urbansed(root: Path | str, split: str | None = None) -> LoadReport:
    """URBAN-SED soundscapes of ``split`` (train, validate or test; default test)."""
    root = check_root(root, "an URBAN-SED folder with audio/ and annotations/")
    split = split or "test"
    if split not in URBANSED_SPLITS:
        raise UsageError(f"--split {split!r}: URBAN-SED has {', '.join(URBANSED_SPLITS)}")
    notes, audio = root / "annotations" / split, root / "audio" / split
    for folder in (notes, audio):
        if not folder.is_dir():
            raise UsageError(f"{folder} not found: is --data-root an URBAN-SED folder "
                             "(audio/<split>/, annotations/<split>/)?")
    index = DirIndex(audio)
    items, missing = [], []
    for txt in sorted(notes.glob("*.txt")):
        events = []
        for n, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if len(parts) < 3:
                raise UsageError(f"{txt}: line {n}: expected onset, offset and label")
            on, off = _span(txt, f"line {n}", parts[0], parts[1])
            events.append((on, off, label_text(parts[2])))
        path = index.find(txt.stem + ".wav")
        if path is None:
            missing.append(str(audio / (txt.stem + ".wav")))
            continue
        items.append(_item(path, events, split=split))
    if not items and not missing:
        raise UsageError(f"{notes}: no annotation files (*.txt)")
    return finish("urbansed", items, missing, notes)


def load_audiogrounding(root: Path | str, split: str | None = None) -> LoadReport:
    """AudioGrounding v2 clips of ``split`` (train, val or test; default test)."""
    root = check_root(root, "an AudioGrounding folder with train.json, val.json, test.json and the audio")
    split = split or "test"
    if split not in GROUNDING_SPLITS:
        raise UsageError(f"--split {split!r}: AudioGrounding has {', '.join(GROUNDING_SPLITS)}")
    labels = root / f"{split}.json"
    if not labels.is_file():
        raise UsageError(f"{labels} not found: is --data-root an AudioGrounding (v2) folder?")
    try:
        data = json.loads(labels.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{labels}: not valid JSON ({e})") from None
    if not isinstance(data, list):
        raise UsageError(f"{labels}: expected a list of audio items (AudioGrounding v2 format)")
    folder = next((f for f in (root / "audio" / split, root / split) if f.is_dir()), None)
    if folder is None:
        raise UsageError(f"no audio folder for {split}: expected {root / 'audio' / split} or {root / split}")
    index = DirIndex(folder)
    clips: dict[str, tuple[str, list[Event]]] = {}
    for k, entry in enumerate(data):
        try:
            name, caption, phrases = str(entry["audio_id"]), str(entry.get("tokens", "")), entry["phrases"]
        except (KeyError, TypeError):
            raise UsageError(f"{labels}: item {k}: expected audio_id and phrases") from None
        events = clips.setdefault(name, (caption, []))[1]
        for phrase in phrases:
            text = " ".join(str(phrase.get("phrase", "")).split())
            for seg in phrase.get("segments", []):
                on, off = _span(labels, f"item {k} ({name})", seg[0], seg[1])
                if text and off > on:
                    events.append((on, off, text))
    items, missing = [], []
    for name, (caption, events) in clips.items():
        path = index.find(name)
        if path is None:
            missing.append(str(folder / name))
            continue
        items.append(_item(path, events, texts=[caption] if caption else None, split=split))
    return finish("audiogrounding", items, missing, labels)


def load_strong_csv(path: Path | str) -> LoadReport:
    """Clips of a strong-label CSV (``filename,onset,offset,label``; files relative to its folder)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"{path} not found: --data-root for --dataset strong is a CSV file "
                         "with columns filename,onset,offset,label")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    need = ("filename", "onset", "offset", "label")
    if not rows or any(c not in rows[0] for c in need):
        raise UsageError(f"{path}: expected the columns {','.join(need)} (one row per event)")
    events: dict[str, list[Event]] = {}
    for n, r in enumerate(rows, start=2):
        on, off = _span(path, f"line {n}", r["onset"], r["offset"])
        events.setdefault(r["filename"], []).append((on, off, label_text(r["label"])))
    items, missing = [], []
    for name, evs in events.items():
        clip = (path.parent / name).resolve()
        if not clip.is_file():
            missing.append(str(clip))
            continue
        items.append(_item(clip, evs))
    return finish("strong", items, missing, path)
