"""The quantity every gradient baseline explains: the zero-shot logit of the explained prompt."""

from __future__ import annotations

import torch
from torch import nn

from lmaczs_cli.models.base import ZeroShotModel


class PromptLogit(nn.Module):
    """``(mag [B, F, T] or [B, 1, F, T], text [B, D]) -> logit_scale * cos(audio_i, text_i)``, [B].

    Text is an argument (captum's ``additional_forward_args``) so that captum
    expands it together with the input for noise samples and IG steps.
    """

    def __init__(self, model: ZeroShotModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, mag: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if mag.dim() == 4:
            mag = mag[:, 0]
        emb = self.model.encode(mag).embedding
        return self.model.logit_scale * (emb * text.to(emb)).sum(-1)


class FixedTextLogit(nn.Module):
    """Like :class:`PromptLogit` with the texts bound, returning [B, 1] (for pytorch-grad-cam).

    ``text`` may be set before each call (GradCAM keeps one wrapper and sets the call's prompts).
    """

    def __init__(self, model: ZeroShotModel, text: torch.Tensor | None) -> None:
        super().__init__()
        self.logit = PromptLogit(model)
        self.text = text

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        return self.logit(mag, self.text)[:, None]
