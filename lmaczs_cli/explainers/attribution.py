"""Input-gradient baselines on the linear spectrogram, via captum: SmoothGrad and Integrated Gradients.

Defaults (documented in docs/explainers.md): SmoothGrad with 25 noisy samples at noise
level 0.15 of each clip's magnitude range (Smilkov et al. suggest 10–20 %,
n ≈ 50; 25 keeps the cost moderate), Integrated Gradients with 50 steps from an
all-zero (silent) spectrogram, evaluated in internal batches so memory stays
bounded.
"""

from __future__ import annotations

import torch

from lmaczs_cli.explainers.base import Explainer, identity_value
from lmaczs_cli.explainers.saliency import saliency_to_mask
from lmaczs_cli.explainers.targets import PromptLogit
from lmaczs_cli.models.base import Encoded, ZeroShotModel


class SmoothGradExplainer(Explainer):
    """SmoothGrad (Smilkov et al. 2017): mean gradient over noisy copies of the input."""

    name = "smoothgrad"
    needs_grad = True

    def __init__(self, samples: int = 25, noise: float = 0.15, internal_batch: int = 8) -> None:
        self.samples = samples
        self.noise = noise
        self.internal_batch = internal_batch

    def identity(self) -> dict[str, str]:
        """Noisy samples and noise level (the noise itself follows the run's seed)."""
        return {"samples": identity_value(int(self.samples)), "noise": identity_value(float(self.noise))}

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        from captum.attr import NoiseTunnel, Saliency

        f = PromptLogit(model)
        out = []
        for i in range(magnitude.shape[0]):  # per clip: its own noise scale
            x = magnitude[i : i + 1].detach()
            std = float(self.noise * (x.max() - x.min()))
            nt = NoiseTunnel(Saliency(f))
            sal = nt.attribute(x, nt_type="smoothgrad", nt_samples=self.samples,
                               nt_samples_batch_size=self.internal_batch, stdevs=std,
                               additional_forward_args=(text[i : i + 1].detach(),), abs=False)
            out.append(sal.detach())
        sal = torch.cat(out)
        return saliency_to_mask(sal, magnitude.shape[1], magnitude.shape[2])


class IntegratedGradientsExplainer(Explainer):
    """Integrated Gradients (Sundararajan et al. 2017) from a silent (all-zero) spectrogram."""

    name = "ig"
    needs_grad = True

    def __init__(self, steps: int = 50, baseline: float = 0.0, internal_batch: int = 8) -> None:
        self.steps = steps
        self.baseline = baseline
        self.internal_batch = internal_batch

    def identity(self) -> dict[str, str]:
        """Steps along the path and the baseline's level."""
        return {"steps": identity_value(int(self.steps)), "baseline": identity_value(float(self.baseline))}

    def compute_masks(self, model: ZeroShotModel, magnitude: torch.Tensor, text: torch.Tensor,
                      encoded: Encoded | None = None) -> torch.Tensor:
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(PromptLogit(model))
        x = magnitude.detach()
        sal = ig.attribute(x, baselines=torch.full_like(x, self.baseline),
                           additional_forward_args=(text.detach(),), n_steps=self.steps,
                           internal_batch_size=max(self.internal_batch, x.shape[0]))
        return saliency_to_mask(sal.detach(), magnitude.shape[1], magnitude.shape[2])


def build_smoothgrad(model: ZeroShotModel, samples: int = 25, noise: float = 0.15) -> SmoothGradExplainer:
    """Registry factory for ``smoothgrad``."""
    return SmoothGradExplainer(samples=samples, noise=noise)


def build_ig(model: ZeroShotModel, steps: int = 50, baseline: float = 0.0) -> IntegratedGradientsExplainer:
    """Registry factory for ``ig``."""
    return IntegratedGradientsExplainer(steps=steps, baseline=baseline)
