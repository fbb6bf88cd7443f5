"""Builders of tiny data sets in exactly the real on-disk layouts (shared/spec/DATASETS.md).

Every clip is a short synthetic tone, so building a set takes milliseconds.
Each builder returns the root it filled (or the manifest CSV).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(sr: int, seconds: float, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A 0.5-amplitude sine [N] (or [N, C], channel c at amplitude 0.5 / (c + 1))."""
    t = np.arange(max(1, int(round(sr * seconds)))) / sr
    x = (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)
    if channels == 1:
        return x
    return np.stack([x / (c + 1) for c in range(channels)], axis=1)


def write_clip(
    path: Path,
    sr: int = 16000,
    seconds: float = 0.5,
    *,
    channels: int = 1,
    subtype: str = "PCM_16",
    freq: float = 440.0,
) -> Path:
    """Write a tone; the format follows the suffix (.wav, .flac, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(sr, seconds, freq, channels), sr, subtype=subtype)
    return path


def write_corrupt(path: Path) -> Path:
    """A file with a WAV header and garbage after it (libsndfile refuses it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(64)))
    return path


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# -- ESC-50 -----------------------------------------------------------------------
#: (filename, fold, target, category, esc10); filename is <fold>-<src>-<take>-<target>.wav
ESC50_ROWS = [
    ("1-100032-A-0.wav", 1, 0, "dog", True),
    ("1-115545-A-48.wav", 1, 48, "fireworks", False),
    ("2-102414-A-17.wav", 2, 17, "pouring_water", False),
    ("2-109505-A-21.wav", 2, 21, "sneezing", True),
    ("3-103050-A-19.wav", 3, 19, "thunderstorm", False),
    ("3-151081-A-20.wav", 3, 20, "crying_baby", True),
    ("4-181286-A-10.wav", 4, 10, "rain", True),
    ("4-191015-A-33.wav", 4, 33, "door_wood_creaks", False),
    ("5-200334-A-1.wav", 5, 1, "rooster", True),
    ("5-9032-A-0.wav", 5, 0, "dog", True),
]


def make_esc50(root: Path, missing: Sequence[str] = (), rows: Sequence[tuple] = ESC50_ROWS) -> Path:
    """``root/meta/esc50.csv`` + ``root/audio/*.wav`` (44.1 kHz 16-bit mono, 0.25 s); rows
    whose filename is in ``missing`` are listed but not written."""
    out = []
    for name, fold, target, category, esc10 in rows:
        src, take = name.split("-")[1:3]
        out.append((name, fold, target, category, esc10, src, take))
        if name not in missing:
            write_clip(root / "audio" / name, 44100, 0.25, freq=200 + 20 * target)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    header = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
    _write_csv(root / "meta" / "esc50.csv", header, out)
    return root


# -- UrbanSound8K -----------------------------------------------------------------
#: (slice_file_name, fold, classID, class, rate, channels, subtype, seconds)
US8K_ROWS = [
    ("100032-3-0-0.wav", 1, 3, "dog_bark", 8000, 1, "PCM_16", 1.0),
    ("100263-2-0-117.wav", 1, 2, "children_playing", 22050, 2, "PCM_24", 0.6),
    ("101415-3-0-2.wav", 2, 3, "dog_bark", 44100, 1, "FLOAT", 0.5),
    ("102102-3-0-0.wav", 3, 3, "dog_bark", 96000, 2, "PCM_U8", 0.4),
    ("102305-6-0-0.wav", 5, 6, "gun_shot", 44100, 1, "PCM_16", 0.2),
    ("103074-7-0-0.wav", 7, 7, "jackhammer", 48000, 2, "DOUBLE", 0.5),
    ("104817-4-0-2.wav", 10, 4, "drilling", 11025, 1, "PCM_32", 0.5),
    ("105029-8-0-1.wav", 10, 8, "siren", 16000, 1, "PCM_16", 4.0),
]


def make_us8k(root: Path, missing: Sequence[str] = ()) -> Path:
    """``root/metadata/UrbanSound8K.csv`` + ``root/audio/fold<k>/`` with mixed rates,
    channels, bit depths (8/16/24/32-bit, float, double) and a 0.2 s clip."""
    out = []
    for name, fold, cid, cls, sr, ch, subtype, sec in US8K_ROWS:
        fs_id = name.split("-")[0]
        out.append((name, fs_id, 0.0, sec, 1, fold, cid, cls))
        if name not in missing:
            write_clip(root / "audio" / f"fold{fold}" / name, sr, sec, channels=ch, subtype=subtype)
    header = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
    _write_csv(root / "metadata" / "UrbanSound8K.csv", header, out)
    return root


# -- Clotho -----------------------------------------------------------------------
CLOTHO_FILES = [
    "Bird song, early morning.wav",
    "Café à Paris – terrasse.wav",
    "river  stream (2).wav",
    "中文 雨声.wav",
]


def clotho_captions(name: str) -> list[str]:
    """Five distinct captions for ``name`` (some with commas and quotes)."""
    stem = Path(name).stem
    return [f'caption {i} of {stem}, with a comma and "quotes"' for i in range(1, 6)]


def make_clotho(root: Path, split: str = "development", missing: Sequence[str] = ()) -> Path:
    """``root/clotho_captions_<split>.csv`` + ``root/<split>/<file_name>`` (44.1 kHz, 0.3 s)."""
    rows = []
    for name in CLOTHO_FILES:
        rows.append((name, *clotho_captions(name)))
        if name not in missing:
            write_clip(root / split / name, 44100, 0.3)
    header = ("file_name", *(f"caption_{i}" for i in range(1, 6)))
    _write_csv(root / f"clotho_captions_{split}.csv", header, rows)
    return root


# -- AudioCaps --------------------------------------------------------------------
#: (youtube_id, start_time, captions, how the clip is on disk: "wav" | "flac" | None = missing)
AUDIOCAPS_CLIPS = [
    ("--0w1YA1Hm4", 30, ["A vehicle driving as a man and woman are talking"], "wav"),
    ("-_Ab_c-12Xy", 0, ["Rain falls on a roof", "Rain patters, thunder rumbles"], "flac"),
    ("zzDx1r2b3Q0", 170, ["A dog barks twice"], None),
    ("7Xq-z_Y9w1k", 40, ["Birds chirp in the distance"], "wav"),
    ("Qq0_missing", 10, ["An engine idles"], None),
]


def make_audiocaps(root: Path, split: str = "train") -> Path:
    """``root/<split>.csv`` + ``root/audio/<split>/<youtube_id>_<start_time>.{wav,flac}``;
    two listed clips absent, as on every real copy."""
    rows = []
    cap_id = 1000
    for yid, start, caps, kind in AUDIOCAPS_CLIPS:
        for cap in caps:
            rows.append((cap_id, yid, start, cap))
            cap_id += 1
        if kind is not None:
            write_clip(root / "audio" / split / f"{yid}_{start}.{kind}", 32000, 0.3)
    (root / "audio" / split).mkdir(parents=True, exist_ok=True)
    _write_csv(root / f"{split}.csv", ("audiocap_id", "youtube_id", "start_time", "caption"), rows)
    return root


# -- manifest ---------------------------------------------------------------------
def make_manifest(folder: Path, name: str = "manifest.csv") -> Path:
    """A manifest with relative paths (incl. a subfolder), an absolute one, two captions for one
    file, labels, a split column, and one listed file that does not exist."""
    a = write_clip(folder / "clips" / "a one.wav", 16000, 0.3)
    write_clip(folder / "clips" / "b.flac", 22050, 0.3)
    elsewhere = write_clip(folder.parent / f"{folder.name}-outside" / "c.wav", 8000, 0.3)
    rows = [
        ("clips/a one.wav", "a dog barks", "dog", "train"),
        (str(a.relative_to(folder)), "a dog barks twice", "dog", "train"),
        ("clips/b.flac", "", "rain", "test"),
        (str(elsewhere), "an engine", "engine", "train"),
        ("clips/not-there.wav", "silence", "", "test"),
    ]
    _write_csv(folder / name, ("path", "caption", "label", "split"), rows)
    return folder / name
