"""Per-clip LMAC-ZS: the mask of each (clip, prompt) optimised directly under the evidence objective.

No decoder: for every pair a low-resolution logit grid (``grid`` = mel rows x time columns,
default 16 x 32) is upsampled bilinearly to the model's mel grid, mapped to linear bins with
the row-normalised mel filterbank (so it cannot exploit single bins) and squashed by a sigmoid.
The grids of all pairs are optimised together with Adam under
:func:`lmaczs_cli.objective.evidence_terms` (the same one-sided objective the decoder trains
with): the masked clip must match the prompt at least as well as the clip (``s~ >= s - margin``),
what the mask removes must match it no better than the clip's reference level, and the mask
must be small (mean M). It stops at ``steps`` or when the loss has not improved by ``tol`` for
``patience`` steps. Seeded (near-zero random initial grids from ``seed``; Adam is deterministic).

The reference level ``tau`` of a clip is its median similarity to the *reference prompts*
(``reference``: e.g. every label of the run; most do not describe the clip, so the median is
the level of a prompt that does not fit), or, without them, the silent input's similarity to
the prompt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmaczs_cli.explainers.base import Explainer, identity_value
from lmaczs_cli.explainers.decoder import mel_to_linear_matrix
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.objective import EvidenceWeights, evidence_terms, kept_share
from lmaczs_cli.runtime import autocast

#: the step budget, read from the quality/cost curve (``benchmarks/bench_perclip.py``): on the
#: bundled model's held-out scenes the pointing game is flat from 25 to 150 steps (0.62-0.67)
#: while 100 or 150 steps cost twice 50
DEFAULT_STEPS = 50


class PerClipLMACZS(Explainer):
    """LMAC-ZS without a decoder: each pair's mask optimised under the evidence objective."""

    name = "lmaczs-perclip"
    needs_grad = True
    #: callers with many prompts per clip pass every pair in one call (one optimisation)
    pairs_at_once = True

    def __init__(
        self,
        steps: int = DEFAULT_STEPS,
        lr: float = 0.1,
        grid: tuple[int, int] = (16, 32),
        weights: EvidenceWeights = EvidenceWeights(),
        tol: float = 1e-4,
        patience: int = 20,
        chunk: int = 64,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        if steps < 1:
            raise ValueError("steps must be at least 1")
        self.steps, self.lr, self.grid, self.weights = int(steps), float(lr), tuple(grid), weights
        self.tol, self.patience, self.chunk, self.seed = float(tol), int(patience), int(chunk), int(seed)
        #: bf16 / fp16 autocast of the model's forward and backward on CUDA (no-op on CPU)
        self.precision = precision
        #: reference prompt embeddings [R, D] for tau (None: the silent input's similarity)
        self.reference: torch.Tensor | None = None
        #: steps the last call ran (the most over its chunks)
        self.last_steps = 0

    def identity(self) -> dict[str, str]:
        """Step budget, learning rate, grid, seed, stopping rule and the objective's weights
        (``chunk`` only bounds memory; the precision is the run's, in run.json)."""
        from dataclasses import asdict

        weights = ",".join(f"{k}={identity_value(v)}" for k, v in sorted(asdict(self.weights).items()))
        return {"steps": identity_value(self.steps), "lr": identity_value(self.lr),
                "grid": identity_value(self.grid), "seed": identity_value(self.seed),
                "tol": identity_value(self.tol), "patience": identity_value(self.patience),
                "weights": weights}

    def compute_masks(
        self,
        model: ZeroShotModel,
        magnitude: torch.Tensor,
        text: torch.Tensor,
        encoded: Encoded | None = None,
    ) -> torch.Tensor:
        """Masks [B, F, T] for pairs (clip i, ``text[i]``), optimised in chunks of ``chunk`` pairs."""
        mag = magnitude.detach()
        text = text.detach().float()
        with torch.no_grad():
            a = (encoded.embedding if encoded is not None else model.encode(mag).embedding).float()
            s = (a * text).sum(-1)
            tau = self._tau(model, a, text)
        fb = mel_to_linear_matrix(model.mel_filterbank()).to(mag.device)
        out, self.last_steps = [], 0
        for lo in range(0, mag.shape[0], self.chunk):
            sl = slice(lo, lo + self.chunk)
            out.append(self._optimise(model, mag[sl], text[sl], s[sl], tau[sl], fb))
        return torch.cat(out)

    def _tau(self, model: ZeroShotModel, a: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if self.reference is not None:
            return (a @ self.reference.to(a.device).float().T).median(1).values
        return (model.silence_embedding().to(a.device) * text).sum(-1)

    def _optimise(
        self,
        model: ZeroShotModel,
        mag: torch.Tensor,
        text: torch.Tensor,
        s: torch.Tensor,
        tau: torch.Tensor,
        fb: torch.Tensor,
    ) -> torch.Tensor:
        n = mag.shape[0]
        gen = torch.Generator().manual_seed(self.seed)
        init = 0.01 * torch.randn(n, 1, *self.grid, generator=gen)
        logits = init.to(mag.device).requires_grad_(True)
        opt = torch.optim.Adam([logits], lr=self.lr)
        best, stale = float("inf"), 0
        size = (model.n_mels, mag.shape[-1])
        steps_run = 0
        for _ in range(self.steps):
            steps_run += 1
            mask = self.to_mask(logits, fb, size)
            with autocast(mag.device, self.precision):
                s_in = (model.encode(mask * mag).embedding.float() * text).sum(-1)
                s_out = (model.encode((1 - mask) * mag).embedding.float() * text).sum(-1)
            kept = kept_share(mag, mask[:, None], power=True)[:, 0] if self.weights.power > 0 else None
            loss = evidence_terms(s, s_in, s_out, tau, mask.mean((-2, -1)), self.weights, kept)["total"].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach()) / n
            if value < best - self.tol:
                best, stale = value, 0
            else:
                stale += 1
            if stale >= self.patience:
                break
        self.last_steps = max(self.last_steps, steps_run)
        with torch.no_grad():
            return self.to_mask(logits, fb, size)

    @staticmethod
    def to_mask(logits: torch.Tensor, fb: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Grids [N, 1, h, w] -> linear masks [N, F, T] (bilinear to mel grid ``size``, then fb)."""
        mel = torch.sigmoid(F.interpolate(logits, size=size, mode="bilinear", align_corners=False))[:, 0]
        return torch.einsum("fm,nmt->nft", fb.to(mel.dtype), mel)


def build_perclip(
    model: ZeroShotModel, steps: int = DEFAULT_STEPS, lr: float = 0.1, seed: int = 0
) -> PerClipLMACZS:
    """Registry factory for ``lmaczs-perclip``."""
    return PerClipLMACZS(steps=steps, lr=lr, seed=seed)
