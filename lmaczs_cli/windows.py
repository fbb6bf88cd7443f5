"""Split clips of any length into model windows and stitch per-window masks back together.

Short clips follow the model's own padding rule (``fit_window``); the part of
the mask over padding is dropped. Long clips are cut into windows overlapping
by half, aligned to STFT hops; their masks are blended with tapered weights so
the stitched map is continuous across joins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lmaczs_cli.models.base import ZeroShotModel


@dataclass(frozen=True)
class ClipWindow:
    """One model window of a clip: samples ``start:start+valid`` of the clip are real audio."""

    wave: torch.Tensor  # [window_samples]
    start: int
    valid: int


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Window start samples covering ``n`` samples with 50% overlap, multiples of ``hop``."""
    if n <= window:
        return [0]
    step = max(hop, (window // 2) // hop * hop)
    starts = list(range(0, n - window + 1, step))
    last = (n - window) // hop * hop
    if starts[-1] != last:
        starts.append(last)
    if last + window < n:  # cover the tail when n - window is not a hop multiple
        starts.append(last + hop)
    return starts


def split_clip(wave: torch.Tensor, model: ZeroShotModel) -> list[ClipWindow]:
    """Windows of a mono clip [N] at the model's rate, ready for ``model.spectrogram``."""
    n, w = int(wave.shape[-1]), model.window_samples
    if n <= w:
        fitted = model.fit_window(wave)
        return [ClipWindow(fitted.wave, 0, fitted.valid)]
    out = []
    for s in window_starts(n, w, model.stft_config.hop_length):
        # fit_window applies the model's own input policy (LAION: int16 round trip, repeat-pad)
        out.append(ClipWindow(model.fit_window(wave[s : s + w]).wave, s, min(w, n - s)))
    return out


def _taper(t: int, device: torch.device) -> torch.Tensor:
    """Blending weights over a window's frames: a Hann bump that never reaches zero."""
    return 0.01 + torch.hann_window(t + 2, periodic=False, device=device)[1:-1]


def stitch_masks(
    masks: torch.Tensor, windows: list[ClipWindow], n_samples: int, hop: int
) -> torch.Tensor:
    """Blend per-window masks [K, F, Tw] into one mask [F, T] over the whole clip.

    ``T`` is the frame count of the clip's own (centred) STFT. A single window
    is simply cut to the clip's frames (the padding's frames are dropped).
    """
    frames = n_samples // hop + 1
    if len(windows) == 1:
        return masks[0, :, :frames]
    k, f, tw = masks.shape
    acc = masks.new_zeros(f, frames)
    wsum = masks.new_zeros(frames)
    taper = _taper(tw, masks.device)
    for i, win in enumerate(windows):
        f0 = win.start // hop
        n_fr = min(tw, frames - f0)
        acc[:, f0 : f0 + n_fr] += masks[i, :, :n_fr] * taper[:n_fr]
        wsum[f0 : f0 + n_fr] += taper[:n_fr]
    return acc / wsum.clamp_min(1e-8)
