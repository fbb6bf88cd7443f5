"""LMAC-ZS as an :class:`Explainer`: a trained :class:`MaskDecoder` applied to (clip, prompt) pairs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lmaczs_cli.explainers.base import Explainer
from lmaczs_cli.explainers.bundled import (  # noqa: F401
    bundled_decoder_name,
    check_mask_domain,
    default_decoder_path,
)
from lmaczs_cli.explainers.decoder import MaskDecoder
from lmaczs_cli.models.base import Encoded, ZeroShotModel


class LMACZS(Explainer):
    """Listenable maps for zero-shot classifiers: masks from the decoder ``M_theta(t, h)``.

    ``net`` is what is called (the decoder itself, or its DDP wrapper during training).
    """

    name = "lmaczs"

    def __init__(self, decoder: MaskDecoder, net: nn.Module | None = None) -> None:
        self.decoder = decoder
        self.net = net if net is not None else decoder
        #: the checkpoint the decoder was loaded from (None: built in memory, e.g. while training)
        self.decoder_path: str | None = None
        self._digest: tuple[str | None, str | None] | None = None  # (path, its SHA-256)

    @property
    def domain(self) -> str:
        return self.decoder.config.domain

    def identity(self) -> dict[str, str]:
        """The decoder's SHA-256 (when loaded from a file or folder) and the mask domain."""
        out = {"domain": str(self.domain)}
        if self.decoder_path is not None:
            if self._digest is None or self._digest[0] != self.decoder_path:
                from lmaczs_cli.provenance import file_sha256

                self._digest = (self.decoder_path, file_sha256(self.decoder_path))
            if self._digest[1]:
                out["decoder_sha256"] = self._digest[1]
        return out

    def compute_masks(
        self,
        model: ZeroShotModel,
        magnitude: torch.Tensor,
        text: torch.Tensor,
        encoded: Encoded | None = None,
    ) -> torch.Tensor:
        """Masks [B, F, T] for the pairs (clip i, ``text[i]``)."""
        idx = torch.arange(magnitude.shape[0], device=magnitude.device)
        return self._run(model, magnitude, encoded, text, idx)

    def pair_masks(
        self,
        model: ZeroShotModel,
        magnitude: torch.Tensor,
        text: torch.Tensor,
        encoded: Encoded | None = None,
    ) -> torch.Tensor:
        """Masks [B, P, F, T] for every (clip i, prompt j) pair; ``text`` is [P, D].

        Differentiable with respect to the decoder (training calls this in grad mode).
        """
        b, p = magnitude.shape[0], text.shape[0]
        idx = torch.arange(b, device=magnitude.device).repeat_interleave(p)
        out = self._run(model, magnitude, encoded, text.repeat(b, 1), idx)
        return out.view(b, p, *out.shape[1:])

    def _run(
        self,
        model: ZeroShotModel,
        magnitude: torch.Tensor,
        encoded: Encoded | None,
        text_rows: torch.Tensor,
        clip_index: torch.Tensor,
    ) -> torch.Tensor:
        if encoded is None:
            with torch.no_grad():
                encoded = model.encode(magnitude)
        hidden = [h.detach() for h in encoded.hidden]
        text_rows = text_rows.to(encoded.embedding.dtype)
        sim = (encoded.embedding.detach()[clip_index] * text_rows).sum(-1)
        return self.net(hidden, text_rows, sim, clip_index, magnitude.detach())


def build_lmaczs(
    model: ZeroShotModel, decoder: str | Path | None = None, mask_domain: str | None = None
) -> LMACZS:
    """Registry factory: LMAC-ZS with the decoder ``decoder`` (a .pt file, a decoder folder or
    ``hf:ORG/REPO[@REV]``; default: the one registered for the model's weights, else the bundled one).

    ``mask_domain`` given: refuse a decoder trained for the other domain.
    """
    from lmaczs_cli.checkpoints import load_decoder
    from lmaczs_cli.explainers.bundled import find_decoder

    check_mask_domain(mask_domain)
    source, recorded = find_decoder(model, decoder, mask_domain)
    dec = load_decoder(source, model, domain=mask_domain)
    dec.eval()
    for p in dec.parameters():
        p.requires_grad_(False)
    explainer = LMACZS(dec)
    explainer.decoder_path = recorded
    return explainer
