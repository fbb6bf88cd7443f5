"""LAION-CLAP *feature fusion*: how a fused CLAP sees a clip longer than its window.

A fusion model (``630k-audioset-fusion-best.pt``, ``laion/clap-htsat-fused``) does not
crop a long clip to one window. Its front end (``laion_clap``'s ``get_audio_features``
with ``data_truncating="fusion"``, transformers' ``ClapFeatureExtractor._random_mel_fusion``)
takes the log-mel of the *whole* clip ``[T, M]`` and stacks 4 "channels" of one window's
``chunk`` frames each:

0. the whole clip's mel shrunk to ``chunk`` frames (bilinear; torchvision ``Resize``
   in the package, i.e. with antialiasing, plain ``interpolate`` in transformers);
1.-3. three window-length crops, one starting in each third of the possible starts
   ``np.array_split(range(T - chunk + 1), 3)`` (an empty third falls back to ``[0]``).

Upstream draws each crop start at random. lmaczs uses a deterministic rule, recorded
in the model's :meth:`fusion_record`: :data:`DEFAULT_RULE` ``"ends-centre"`` takes the
first start of the front third (0: the clip's start), the middle start of the middle
third and the last start of the back third (``T - chunk``: the clip's end), so the
crops always include the clip's beginning and end and every start is one upstream can
draw; ``"thirds-start"`` takes the first start of each third. Everything here is
a differentiable function of the whole clip's log-mel, hence of its linear magnitude,
so a mask over the whole clip explains the fused embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: the crop rules (see the module docstring)
RULES = ("ends-centre", "thirds-start")
DEFAULT_RULE = "ends-centre"


def thirds(total_frames: int, chunk_frames: int) -> list[list[int]]:
    """Upstream's three ranges of allowed crop starts (with its fallback for empty thirds)."""
    ranges = [list(map(int, r)) for r in np.array_split(list(range(0, total_frames - chunk_frames + 1)), 3)]
    return [r if r else [0] for r in ranges]


def crop_starts(total_frames: int, chunk_frames: int, rule: str = DEFAULT_RULE) -> tuple[int, int, int]:
    """The three crop starts (frames) ``rule`` picks for a clip of ``total_frames`` > ``chunk_frames``."""
    if total_frames <= chunk_frames:
        raise ValueError(f"{total_frames} frames do not exceed one window ({chunk_frames}): no fusion crops")
    front, middle, back = thirds(total_frames, chunk_frames)
    if rule == "ends-centre":
        return front[0], middle[len(middle) // 2], back[-1]
    if rule == "thirds-start":
        return front[0], middle[0], back[0]
    raise ValueError(f"unknown fusion crop rule {rule!r} (one of {', '.join(RULES)})")


def fused_mel(mel: torch.Tensor, chunk_frames: int, starts: Sequence[int], antialias: bool) -> torch.Tensor:
    """Whole-clip log-mel [B, T, M] -> fused input [B, 4, chunk, M]: shrunk global view, 3 crops."""
    b, t, m = mel.shape
    if len(starts) != 3 or any(not 0 <= s <= t - chunk_frames for s in starts):
        raise ValueError(f"crop starts {list(starts)} outside [0, {t - chunk_frames}]")
    shrunk = F.interpolate(mel.unsqueeze(1), size=[chunk_frames, m], mode="bilinear",
                           align_corners=False, antialias=antialias).squeeze(1)
    crops = [mel[:, s : s + chunk_frames] for s in starts]
    return torch.stack([shrunk, *crops], dim=1)


def htk_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """``torchaudio.functional.melscale_fbanks(..., norm=None, mel_scale="htk")`` [F, n_mels]
    (the filters of ``laion_clap``'s ``get_mel``), computed without torchaudio."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min, m_max = (2595.0 * np.log10(1.0 + f / 700.0) for f in (f_min, f_max))
    m_pts = torch.linspace(float(m_min), float(m_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1), torch.min(down, up))


def fusion_record(total_frames: int, chunk_frames: int, starts: Sequence[int] | None, rule: str) -> dict:
    """What a run records about a fused view: the rule, the crop starts (frames), the sizes."""
    return {
        "fusion": starts is not None,
        "fusion_rule": rule,
        "fusion_crop_starts": None if starts is None else [int(s) for s in starts],
        "fusion_total_frames": int(total_frames),
        "fusion_chunk_frames": int(chunk_frames),
    }
