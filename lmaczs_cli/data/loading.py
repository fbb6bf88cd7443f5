"""Audio items -> fixed-size waveform records for a ``torch.utils.data.DataLoader``.

``ClipDataset(items, sample_rate, window_samples, crop=..., seed=..., fit=...)``
decodes each file with :func:`lmaczs_cli.audio.load_audio` (any format, rate,
channel count, bit depth -> mono float32 at ``sample_rate``) and returns a
record (a dict):

- ``index``, ``path``, ``label``: the item's position, file and label (or None);
- ``text``: one of the item's texts (None if it has none), chosen by an RNG
  seeded with ``(seed, epoch, index)``; call ``set_epoch(e)`` each epoch;
- ``wave``: float32 [window_samples] (``crop="none"``: the whole clip);
- ``valid``: how many leading samples of ``wave`` are real audio;
- ``offset``: where the window starts in the clip, in samples at ``sample_rate``;
- ``orig_sample_rate``, ``orig_num_samples``: the file's own rate and length;
- ``error``: None, or the one-line reason the file could not be used.

Crops: ``"start"`` takes the first window of the clip; ``"random"`` a window
at an RNG-chosen ``(seed, epoch, index)`` position (training; starts are
multiples of the resampling period, e.g. 10 ms for 44.1 -> 16 kHz); ``"none"``
returns the whole clip (``collate_clips`` zero-pads a batch to its longest).
Only the span needed is decoded. Clips shorter than the window are
zero-padded at the end, unless ``fit`` (the model's ``fit_window``: 1-D
tensor -> object with ``.wave`` [window_samples] and ``.valid``) is given: it
is then applied to every cropped segment and decides padding (and any
model-specific processing such as LAION's int16 round trip).

A file that cannot be read never raises out of ``__getitem__``: its record has
``error`` set, a zero ``wave`` and ``valid == 0``, so batch commands report it
and go on. The dataset is picklable (no lambdas) and works with
``num_workers > 0``; with ``persistent_workers=True`` workers do not see
``set_epoch`` calls, so leave it off when the epoch matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lmaczs_cli.audio import audio_info, load_audio
from lmaczs_cli.data.items import AudioItem
from lmaczs_cli.errors import AudioError

CROPS = ("start", "random", "none")
#: extra audio decoded around a window so the resampler's edges fall outside it
_MARGIN_S = 0.02
_TEXT_STREAM, _CROP_STREAM = 0, 1


class ClipDataset(Dataset):
    """Items decoded to mono windows at the model's rate; bad files become error records."""

    def __init__(
        self,
        items: Sequence[AudioItem],
        sample_rate: int,
        window_samples: int,
        *,
        crop: str = "start",
        seed: int = 0,
        fit: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
        if int(sample_rate) <= 0 or int(window_samples) <= 0:
            raise ValueError(f"sample_rate {sample_rate} and window_samples {window_samples} must be > 0")
        self.items = list(items)
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        self.crop = crop
        self.seed = int(seed)
        self.fit = fit
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Re-draw texts and random crops: the RNG is seeded with ``(seed, epoch, index)``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        key = [stream, self.seed % 2**63, self.epoch % 2**63, int(index)]
        return np.random.default_rng(np.random.SeedSequence(key))

    def choose_text(self, index: int) -> str | None:
        """The text record ``index`` gets this epoch (its only one, or a seeded pick)."""
        texts = self.items[index].texts
        if len(texts) <= 1:
            return texts[0] if texts else None
        return texts[int(self._rng(index, _TEXT_STREAM).integers(len(texts)))]

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        item = self.items[index]
        rec: dict[str, Any] = {
            "index": index,
            "path": item.path,
            "label": item.label,
            "text": self.choose_text(index),
        }
        try:
            wave, valid, offset, sr0, n0 = self._load(index, item.path)
            error = None
        except Exception as e:  # one bad file must not stop a batch
            wave = torch.zeros(self.window_samples, dtype=torch.float32)
            valid, offset, sr0, n0, error = 0, 0, 0, 0, _one_line(e, item.path)
        if self.crop != "none" and wave.shape != (self.window_samples,):
            raise ValueError(
                f"fit returned a wave of shape {tuple(wave.shape)}, expected ({self.window_samples},)"
            )
        rec.update(
            wave=wave, valid=int(valid), offset=int(offset),
            orig_sample_rate=int(sr0), orig_num_samples=int(n0), error=error,
        )  # fmt: skip
        return rec

    def _load(self, index: int, path: str) -> tuple[torch.Tensor, int, int, int, int]:
        """(wave, valid, offset, orig rate, orig frames); raises AudioError for bad files."""
        sr, win = self.sample_rate, self.window_samples
        if self.crop == "none":
            audio = load_audio(path, sr)
            wave = audio.wave.float().contiguous()
            return wave, wave.shape[0], 0, audio.orig_sample_rate, audio.orig_num_samples
        info = audio_info(path)
        sr0, frames = int(info.samplerate), int(info.frames)
        total = math.ceil(frames * sr / sr0)  # clip length once resampled
        # random starts are whole resampling periods (``step`` samples, 10 ms for 44.1 -> 16 kHz)
        # into the clip, so the window is exactly ``load_audio(path, sr).wave[offset:offset + win]``
        g = math.gcd(sr0, sr)
        step0, step = sr0 // g, sr // g
        start = 0
        if self.crop == "random" and total > win:
            start = step * int(self._rng(index, _CROP_STREAM).integers((total - win) // step + 1))
        start0 = start // step * step0  # the same instant in the file's own samples
        # decode a few periods before the window (so it lines up exactly) and a margin after it
        margin0 = max(1, math.ceil(_MARGIN_S * sr0))
        k = min(start0, max(margin0, step0)) // step0
        lead0, lead = k * step0, k * step
        span0 = lead0 + math.ceil(win * sr0 / sr) + margin0
        audio = load_audio(path, sr, offset_s=(start0 - lead0) / sr0, duration_s=span0 / sr0)
        seg = audio.wave[lead : lead + win].float()
        if seg.shape[0] == 0:
            raise AudioError(path, "no audio samples in the window")
        if self.fit is not None:
            fitted = self.fit(seg)
            return fitted.wave.float().contiguous(), int(fitted.valid), start, sr0, frames
        if seg.shape[0] == win:
            return seg.clone(), win, start, sr0, frames
        wave = torch.zeros(win, dtype=torch.float32)
        wave[: seg.shape[0]] = seg
        return wave, seg.shape[0], start, sr0, frames


def _one_line(e: Exception, path: str) -> str:
    """An exception as one line that names the file."""
    if isinstance(e, AudioError):
        msg = str(e) if e.path == str(path) else f"{path}: {e.reason}"
    else:
        detail = str(e).strip().splitlines()
        msg = f"{path}: {type(e).__name__}" + (f": {detail[0]}" if detail else "")
    return " ".join(msg.split())


def collate_clips(records: Sequence[dict]) -> dict:
    """Batch records: ``wave`` [B, N] float32 (zero-padded to the longest), ``valid`` [B] long;
    every other key becomes a list (``error`` included)."""
    if not records:
        raise ValueError("collate_clips: empty batch")
    waves = [r["wave"] for r in records]
    n = max(w.shape[0] for w in waves)
    batch = torch.zeros(len(waves), n, dtype=torch.float32)
    for i, w in enumerate(waves):
        batch[i, : w.shape[0]] = w
    out: dict[str, Any] = {
        "wave": batch,
        "valid": torch.tensor([int(r["valid"]) for r in records], dtype=torch.long),
    }
    for key in records[0]:
        if key not in out:
            out[key] = [r.get(key) for r in records]
    return out


def _as_list(records: list[dict]) -> list[dict]:
    return records


def whole_clip_records(
    paths: Sequence[Any], sample_rate: int, clips_per_batch: int, num_workers: int = 0
) -> Any:
    """Lists of whole-clip records (``crop="none"``) at ``sample_rate``, decoded in ``num_workers``
    processes; unusable files come back as records with ``error`` set."""
    from torch.utils.data import DataLoader

    items = [AudioItem(path=str(p), texts=()) for p in paths]
    ds = ClipDataset(items, sample_rate, 1, crop="none")
    return iter(DataLoader(ds, batch_size=clips_per_batch, num_workers=num_workers, collate_fn=_as_list))


def window_batches(paths: Sequence[Any], model: Any, batch_size: int, num_workers: int = 0) -> Any:
    """Batches (``collate_clips``) of each file's first window, fitted by the model's own rule;
    unusable files come back with ``error`` set."""
    from torch.utils.data import DataLoader

    items = [AudioItem(path=str(p), texts=()) for p in paths]
    ds = ClipDataset(items, model.sample_rate, model.window_samples, crop="start", fit=model.fit_window)
    return iter(DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_clips))
