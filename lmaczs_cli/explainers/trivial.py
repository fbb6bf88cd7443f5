"""Trivial reference masks every explanation must beat: keep everything, keep nothing, a random box.

A map earns its keep only by what it adds over these; ``groundtruth`` and ``evaluate`` report
them in the same tables as the real methods.
"""

from __future__ import annotations

import torch

from lmaczs_cli.explainers.base import Explainer, identity_value
from lmaczs_cli.models.base import Encoded, ZeroShotModel


class ConstantMask(Explainer):
    """The all-ones (``value=1``) or empty (``value=0``) mask."""

    def __init__(self, value: float) -> None:
        self.value = float(value)
        self.name = "all-ones" if value else "empty"

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        return torch.full_like(magnitude, self.value, dtype=torch.float32)


class RandomRectangle(Explainer):
    """One axis-aligned box of ones per pair: each side 10-60 % of its axis, placed uniformly.

    Seeded: the n-th call of an explainer built with the same seed draws the same boxes.
    """

    name = "random-rectangle"

    def __init__(self, seed: int = 0, lo: float = 0.1, hi: float = 0.6) -> None:
        self.seed = int(seed)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.lo, self.hi = lo, hi

    def identity(self) -> dict[str, str]:
        """The seed and the range of a box side (share of its axis)."""
        return {"seed": identity_value(self.seed), "lo": identity_value(float(self.lo)),
                "hi": identity_value(float(self.hi))}

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        b, f, t = magnitude.shape
        out = torch.zeros(b, f, t)
        for i in range(b):
            u = torch.rand(4, generator=self.gen)
            hf = max(1, int(f * (self.lo + (self.hi - self.lo) * u[0])))
            wt = max(1, int(t * (self.lo + (self.hi - self.lo) * u[1])))
            f0, t0 = int((f - hf) * u[2]), int((t - wt) * u[3])
            out[i, f0 : f0 + hf, t0 : t0 + wt] = 1.0
        return out.to(magnitude.device)


def build_all_ones(model: ZeroShotModel) -> ConstantMask:
    """Registry factory for ``all-ones``."""
    return ConstantMask(1.0)


def build_empty(model: ZeroShotModel) -> ConstantMask:
    """Registry factory for ``empty``."""
    return ConstantMask(0.0)


def build_random_rectangle(model: ZeroShotModel, seed: int = 0) -> RandomRectangle:
    """Registry factory for ``random-rectangle``."""
    return RandomRectangle(seed)
