"""Saliency maps -> masks, the same way for every baseline (docs/method.md §5).

A saliency map is resampled to the spectrogram's grid, made non-negative
(absolute value) and min–max normalised per sample to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mel_rows_to_linear(x: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Map maps over mel bands [B, M, T] to linear bins [B, F, T] with the filterbank [M, F].

    Each linear bin takes the filter-weighted average of the bands covering it;
    bins no filter covers (below fmin / above fmax) take the nearest band's value.
    """
    fb = fb.to(x)
    weight = fb.sum(0)  # [F]
    lin = torch.einsum("mf,bmt->bft", fb, x) / weight.clamp_min(1e-12)[None, :, None]
    uncovered = weight <= 1e-12
    if bool(uncovered.any()):
        nearest = fb.argmax(0)  # band with the largest weight (0 where none)
        covered_idx = torch.nonzero(~uncovered).squeeze(1)
        lo, hi = int(covered_idx.min()), int(covered_idx.max())
        nearest[: lo] = 0
        nearest[hi + 1 :] = fb.shape[0] - 1
        lin[:, uncovered, :] = x[:, nearest[uncovered], :]
    return lin


def to_grid(sal: torch.Tensor, n_rows: int, n_frames: int) -> torch.Tensor:
    """Bilinear resampling of maps [B, H, W] to [B, n_rows, n_frames]."""
    if sal.shape[-2:] == (n_rows, n_frames):
        return sal
    return F.interpolate(sal[:, None].float(), size=(n_rows, n_frames), mode="bilinear",
                         align_corners=False)[:, 0]


def normalise(sal: torch.Tensor) -> torch.Tensor:
    """abs, then per-sample min–max to [0, 1] (a constant map becomes all zeros)."""
    a = sal.abs().flatten(1)
    lo = a.min(1, keepdim=True).values
    hi = a.max(1, keepdim=True).values
    return ((a - lo) / (hi - lo).clamp_min(1e-12)).view_as(sal)


def saliency_to_mask(
    sal: torch.Tensor, n_freqs: int, n_frames: int, mel_fb: torch.Tensor | None = None
) -> torch.Tensor:
    """Turn saliency [B, H, W] into a mask [B, n_freqs, n_frames] in [0, 1].

    ``mel_fb`` given: the map's rows are mel bands (a feature map of a mel
    encoder); they are brought to ``n_mels`` rows and mapped to linear bins.
    """
    if mel_fb is not None:
        sal = mel_rows_to_linear(to_grid(sal, mel_fb.shape[0], n_frames), mel_fb)
    return normalise(to_grid(sal, n_freqs, n_frames))
