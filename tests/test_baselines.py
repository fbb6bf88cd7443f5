"""Baselines against analytically known attributions on tiny models."""

from __future__ import annotations

import torch
from torch import nn

from lmaczs_cli.explainers.attribution import IntegratedGradientsExplainer, SmoothGradExplainer
from lmaczs_cli.explainers.gradcam import GradCAMExplainer
from lmaczs_cli.explainers.saliency import mel_rows_to_linear, normalise, saliency_to_mask
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.signal import STFTConfig

F_, T_ = 9, 12


class LinearModel(ZeroShotModel):
    """embedding = [w . vec(mag), 0]; with text [1, 0] and logit_scale 1 the logit is linear."""

    name = "linear"
    sample_rate = 800
    window_seconds = 1.0
    stft_config = STFTConfig(16, 8, 16)
    n_mels = 3

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(F_, T_, generator=g), requires_grad=False)

    def input_transform(self, magnitude):
        return magnitude

    def encode(self, magnitude):
        z = (magnitude * self.w).flatten(1).sum(1)
        return Encoded(torch.stack([z, torch.zeros_like(z)], 1), [])

    def _embed_text(self, prompts):
        return torch.tensor([[1.0, 0.0]] * len(prompts))

    @property
    def logit_scale(self):
        return 1.0

    def mel_filterbank(self):
        return torch.ones(3, F_) / 3

    def randomisable_blocks(self):
        return []

    def gradcam_target(self):
        return None, None


def test_integrated_gradients_is_exact_on_a_linear_model() -> None:
    m = LinearModel()
    mag = torch.rand(2, F_, T_, generator=torch.Generator().manual_seed(1))
    text = m.embed_text(["a", "b"])
    got = IntegratedGradientsExplainer(steps=16).masks(m, mag, text)
    want = normalise(m.w.detach() * mag)  # IG of w.x from 0 is w * x, exactly
    assert torch.allclose(got, want, atol=1e-5)


def test_smoothgrad_of_a_linear_model_is_its_weights() -> None:
    m = LinearModel()
    mag = torch.rand(1, F_, T_, generator=torch.Generator().manual_seed(2))
    got = SmoothGradExplainer(samples=8, noise=0.3).masks(m, mag, m.embed_text(["a"]))
    assert torch.allclose(got[0], normalise(m.w.detach()[None])[0], atol=1e-5)


class _RowGate(nn.Module):
    """Channel 0 passes the low half of the rows, channel 1 the high half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(x.shape[-2], device=x.device)[:, None]
        low = (rows < x.shape[-2] // 2).float()
        return torch.cat([x * low, x * (1 - low)], dim=1)


class ConvModel(LinearModel):
    """Text [1, 0] asks for channel 0 (low rows), text [0, 1] for channel 1 (high rows),
    so GradCAM must point at different halves for the two prompts."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = _RowGate()

    def encode(self, magnitude):
        h = self.gate(magnitude[:, None])
        return Encoded(h.sum((-1, -2)), [h])

    def gradcam_target(self):
        return self.gate, None

    def mel_filterbank(self):
        return torch.eye(F_)  # the layer's rows are the linear bins themselves


def test_gradcam_follows_the_target_and_lies_on_the_grid() -> None:
    m = ConvModel()
    mag = torch.ones(2, F_, T_)
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for plus in (False, True):
        masks = GradCAMExplainer(plus=plus).masks(m, mag, text)
        assert masks.shape == (2, F_, T_)
        assert 0.0 <= float(masks.min()) and float(masks.max()) <= 1.0
        low, high = slice(0, F_ // 2), slice(F_ // 2 + 1, F_)
        assert masks[0, low].mean() > masks[0, high].mean() + 0.5
        assert masks[1, high].mean() > masks[1, low].mean() + 0.5


def test_mel_rows_to_linear_keeps_constants_and_covers_every_bin() -> None:
    fb = torch.zeros(3, 10)
    fb[0, 1:4] = 1
    fb[1, 3:7] = 1
    fb[2, 6:9] = 1  # bins 0 and 9 are covered by no filter
    lin = mel_rows_to_linear(torch.full((1, 3, 5), 0.25), fb)
    assert torch.allclose(lin, torch.full((1, 10, 5), 0.25))
    x = torch.tensor([0.0, 0.5, 1.0])[None, :, None].expand(1, 3, 2)
    lin = mel_rows_to_linear(x, fb)
    assert float(lin[0, 0, 0]) == 0.0 and float(lin[0, 9, 0]) == 1.0  # nearest band at the edges


def test_saliency_to_mask_is_abs_minmax_on_the_spectrogram_grid() -> None:
    sal = torch.tensor([[[-2.0, 1.0], [0.0, 0.5]]])
    m = saliency_to_mask(sal, 2, 2)
    assert torch.allclose(m, torch.tensor([[[1.0, 0.5], [0.0, 0.25]]]))
    assert saliency_to_mask(torch.randn(3, 4, 5), 8, 10).shape == (3, 8, 10)
