"""Sliding-window similarity: what a user does today to find *when* a sound happens.

The clip is cut into windows (1 s, hop 0.25 s by default) and the model scores each window
against the prompt with its own zero-shot score (the cosine similarity s). A window is the
clip's spectrogram with everything outside it zeroed (as a window cut from the audio and
zero-padded to the model's length). Each frame gets the mean of ``clamp(s, 0, 1)`` over the
windows that cover it, and the mask is that profile, constant over frequency: a baseline for
time spans (``lmaczs_cli.events``), not a time-frequency explanation.
"""

from __future__ import annotations

import torch

from lmaczs_cli.explainers.base import Explainer, identity_value
from lmaczs_cli.models.base import Encoded, ZeroShotModel


def window_boxes(n_frames: int, window: int, hop: int) -> torch.Tensor:
    """[K, T] 0/1 boxes of ``window`` frames every ``hop`` frames; the last one ends at the clip's end."""
    window = max(1, min(int(window), n_frames))
    starts = list(range(0, n_frames - window + 1, max(1, int(hop))))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    boxes = torch.zeros(len(starts), n_frames)
    for k, s in enumerate(starts):
        boxes[k, s : s + window] = 1.0
    return boxes


class SlidingWindow(Explainer):
    """Per-window zero-shot similarity as a time profile (see the module docstring)."""

    name = "sliding-window"

    def __init__(self, window: float = 1.0, hop: float = 0.25, batch: int = 64) -> None:
        if window <= 0 or hop <= 0:
            raise ValueError("sliding-window: window and hop must be positive seconds")
        self.window, self.hop, self.batch = float(window), float(hop), int(batch)
        self._cache: tuple[tuple, torch.Tensor] | None = None  # the last clips' window embeddings

    def identity(self) -> dict[str, str]:
        """Window length and hop, in seconds."""
        return {"window": identity_value(self.window), "hop": identity_value(self.hop)}

    def window_embeddings(self, model: ZeroShotModel, magnitude: torch.Tensor,
                          boxes: torch.Tensor) -> torch.Tensor:
        """Embeddings [B, K, D] of every window of every clip (cached for the same clips)."""
        key = (magnitude.data_ptr(), tuple(magnitude.shape), float(magnitude.float().sum()), boxes.shape)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        b, k = magnitude.shape[0], boxes.shape[0]
        flat = (magnitude[:, None] * boxes[None, :, None, :]).reshape(b * k, *magnitude.shape[1:])
        emb = torch.cat([model.encode(flat[s : s + self.batch]).embedding.float()
                         for s in range(0, b * k, self.batch)])
        out = emb.view(b, k, -1)
        self._cache = (key, out)
        return out

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        b, f, t = magnitude.shape
        fps = model.sample_rate / model.stft_config.hop_length
        boxes = window_boxes(t, round(self.window * fps), round(self.hop * fps)).to(magnitude.device)
        emb = self.window_embeddings(model, magnitude, boxes)  # [B, K, D]
        scores = (emb * text.float()[:, None, :]).sum(-1).clamp(0, 1)  # [B, K]
        profile = (scores @ boxes) / boxes.sum(0).clamp_min(1)  # [B, T]
        return profile[:, None, :].expand(b, f, t).contiguous()


def build_sliding_window(model: ZeroShotModel, window: float = 1.0, hop: float = 0.25) -> SlidingWindow:
    """Registry factory for ``sliding-window``."""
    return SlidingWindow(window, hop)
