"""The LMAC-ZS mask decoder ``M_theta(t, h)``: text-conditioned, for any model's hidden maps.

Architecture (sizes are read from one probe encode and kept in :class:`DecoderConfig`):

1. *Laterals*: a 1x1 conv per hidden map ``h_k`` [C_k, H_k, W_k] (shallow -> deep) to
   ``w_k`` channels, with ``w_K = width`` for the deepest map, halving towards the
   shallow ones (at least 8). Computed once per clip, shared by all its prompts.
2. *Top-down path* (FPN-like): start from the deepest lateral; at each stage a
   residual block conv3x3 -> GroupNorm -> FiLM(c) -> GELU, where ``c = [t*sqrt(D), 5*s]``
   (the prompt's embedding and its similarity ``s = t.a`` to the clip); then a 1x1
   channel reduction, bilinear upsampling to the next shallower map, plus its lateral.
3. *Head*: conv3x3 -> 1 logit map at the shallowest map's grid, plus a global,
   text/similarity-dependent bias (MLP on ``c``), resized bilinearly to the model's
   feature grid ``[n_mels, T]`` (hidden maps are assumed to lie over the log-mel
   grid; a map whose aspect ratio matches ``[T, n_mels]`` better is transposed).
4. *Domain*: ``mel`` -> sigmoid on the mel grid, then mapped to linear bins with the
   row-normalised transposed mel filterbank (all-ones stays all-ones);
   ``stft`` -> the logits are mapped to linear bins the same way, plus an *energy
   gate* ``alpha(c) * z + beta(c)`` where ``z`` is the clip's standardised
   log-magnitude per linear bin (so a mask can follow the harmonics and quiet
   bins inside a mel band at the cost of two elementwise ops), then sigmoid.
   Nothing else runs at full resolution: a mask costs about 0.3x an encode of
   the small model (whose first op is its mel projection) and far less for HTSAT.

The decoder always returns *linear* masks [N, F, T] in [0, 1], i.e. what multiplies X.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmaczs_cli.explainers.bundled import DOMAINS

#: where the stft energy gate's slope comes from (``DecoderConfig.gate_source``)
GATE_SOURCES = ("prompt", "features")


@dataclass
class DecoderConfig:
    """Everything needed to rebuild a decoder; saved in checkpoints as plain types."""

    hidden_shapes: list[list[int]]  # [C, H, W] of each hidden map as the model returns it
    text_dim: int
    n_freqs: int
    n_mels: int
    n_frames: int
    domain: str = "stft"
    width: int = 64
    energy_gate: bool = True  # stft only: per-bin gate on the clip's log-magnitude
    #: condition on the pair's similarity s as well as the prompt (False: ``c = t`` alone, the
    #: paper's ``M_theta(t, h)``; the mask's level must then come from the features)
    sim_input: bool = True
    #: how many of the model's shallowest hidden maps the decoder ignores (0: all are read). Maps
    #: read only from deep features change when the model's deep blocks are randomised; shallow
    #: features keep the spectrogram's shape whatever the weights
    skip: int = 0
    #: normalise each hidden map over its channels at every location (mean 0, unit norm) before
    #: the laterals: the decoder then reads what a location's features say, not how loud it is
    feature_norm: bool = False
    #: where the stft energy gate's slope comes from: "prompt" (one ``alpha(c)`` per pair) or
    #: "features" (a second head channel, ``alpha(t, h)`` per bin: the gate then changes with the
    #: model's weights instead of applying the same energy ranking whatever the model hears)
    gate_source: str = "prompt"
    transpose: list[bool] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecoderConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def mel_to_linear_matrix(fbank: torch.Tensor) -> torch.Tensor:
    """[F, n_mels] matrix mapping a mel-grid mask to linear bins; rows sum to 1.

    Each linear bin takes the average of the mel bands whose filters cover it,
    weighted by the filter values; bins no filter covers copy their nearest
    covered bin. So an all-ones (all-zeros) mel mask maps to all ones (zeros).
    """
    w = fbank.detach().double().T.clone()  # [F, M]
    covered = w.sum(1) > 0
    if not bool(covered.any()):
        raise ValueError("mel filterbank covers no linear frequency bin")
    idx = covered.nonzero()[:, 0]
    for f in (~covered).nonzero()[:, 0].tolist():
        w[f] = w[idx[(idx - f).abs().argmin()]]
    return (w / w.sum(1, keepdim=True)).float()


def _groups(ch: int) -> int:
    return math.gcd(ch, 8)


class FiLMBlock(nn.Module):
    """Residual conv3x3 -> GroupNorm -> FiLM(cond) -> GELU."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)  # GroupNorm follows
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.film = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        return x + F.gelu(self.norm(self.conv(x)) * (1 + gamma) + beta)


class MaskDecoder(nn.Module):
    """``M_theta(t, h)``: hidden maps + prompt embeddings -> linear masks [N, F, T] in [0, 1]."""

    def __init__(self, config: DecoderConfig, mel_filterbank: torch.Tensor) -> None:
        super().__init__()
        if config.domain not in DOMAINS:
            raise ValueError(f"mask domain {config.domain!r}: expected one of {DOMAINS}")
        self.config = config
        k = len(config.hidden_shapes)
        if k == 0:
            raise ValueError("the model exposes no hidden feature maps for the decoder")
        if not config.transpose:
            config.transpose = [False] * k
        widths = [max(8, config.width // 2 ** (k - 1 - i)) for i in range(k)]
        cond_dim = config.text_dim + 1
        self.laterals = nn.ModuleList(
            nn.Conv2d(s[0], w, 1) for s, w in zip(config.hidden_shapes, widths, strict=True)
        )
        self.stages = nn.ModuleList(FiLMBlock(w, cond_dim) for w in widths)
        self.reduce = nn.ModuleList(
            [nn.Identity()] + [nn.Conv2d(widths[i], widths[i - 1], 1) for i in range(1, k)]
        )
        if config.gate_source not in GATE_SOURCES:
            raise ValueError(f"gate source {config.gate_source!r}: expected one of {GATE_SOURCES}")
        gated = config.domain == "stft" and config.energy_gate
        self.feature_gate = gated and config.gate_source == "features"
        self.head = nn.Conv2d(widths[0], 1 + self.feature_gate, 3, padding=1)
        if self.feature_gate:  # the slope map starts at 0, as the prompt gate does
            nn.init.zeros_(self.head.weight[1:])
            nn.init.zeros_(self.head.bias[1:])
        self.bias = nn.Sequential(nn.Linear(cond_dim, 64), nn.GELU(), nn.Linear(64, 1))
        self.gate: nn.Linear | None = None
        if gated and not self.feature_gate:
            self.gate = nn.Linear(cond_dim, 2)
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        self.register_buffer("mel_to_linear", mel_to_linear_matrix(mel_filterbank), persistent=False)

    @classmethod
    def for_model(
        cls, model: Any, domain: str = "stft", width: int = 64, energy_gate: bool = True,
        sim_input: bool = True, skip: int = 0, feature_norm: bool = False, gate_source: str = "prompt",
    ) -> MaskDecoder:
        """Size a decoder for ``model`` from one probe encode of a full window."""
        dev = model.device
        with torch.no_grad():  # a real spectrogram of a quiet window (a model may need its phase)
            probe, _ = model.spectrogram(1e-2 * torch.randn(1, model.window_samples, device=dev))
            enc = model.encode(probe)
        shapes = [list(h.shape[1:]) for h in enc.hidden]
        if not 0 <= skip < len(shapes):
            n = len(shapes)
            raise ValueError(f"--decoder-skip {skip}: the model has {n} hidden maps (0 to {n - 1})")
        shapes = shapes[skip:]
        if any(len(s) != 3 for s in shapes):
            raise ValueError(f"hidden maps must be [B, C, H, W]; got shapes {shapes}")
        cfg = DecoderConfig(
            hidden_shapes=shapes,
            text_dim=int(enc.embedding.shape[-1]),
            n_freqs=model.n_freqs,
            n_mels=model.n_mels,
            n_frames=model.n_frames,
            domain=domain,
            width=width,
            energy_gate=energy_gate,
            sim_input=sim_input,
            skip=skip,
            feature_norm=feature_norm,
            gate_source=gate_source,
            transpose=[_needs_transpose(s[1], s[2], model.n_mels, model.n_frames) for s in shapes],
        )
        return cls(cfg, model.mel_filterbank()).to(dev)

    def forward(
        self,
        hidden: list[torch.Tensor],
        text: torch.Tensor,
        sim: torch.Tensor,
        clip_index: torch.Tensor,
        magnitude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masks for N (clip, prompt) pairs.

        ``hidden``: the clips' maps, each [B, C, H, W]; ``text`` [N, D]: the pair's
        prompt embedding; ``sim`` [N]: its similarity to the clip; ``clip_index``
        [N]: which clip; ``magnitude`` [B, F, T]: the clips (for the stft energy gate).
        """
        cfg = self.config
        cond = torch.cat([text * math.sqrt(cfg.text_dim), 5.0 * sim[:, None] * cfg.sim_input], dim=1)
        cond = cond.to(text.dtype)
        maps = hidden[cfg.skip :]
        if cfg.feature_norm:
            maps = [_channel_normalised(h) for h in maps]
        lat = [
            conv(h.transpose(-1, -2) if tr else h)
            for conv, h, tr in zip(self.laterals, maps, cfg.transpose, strict=True)
        ]
        x = lat[-1][clip_index]
        for k in range(len(lat) - 1, -1, -1):
            x = self.stages[k](x, cond)
            if k > 0:
                x = F.interpolate(self.reduce[k](x), size=lat[k - 1].shape[-2:], mode="bilinear")
                x = x + lat[k - 1][clip_index]
        bias = self.bias(cond)
        alpha = None
        if self.gate is not None:
            alpha, beta = self.gate(cond).unbind(1)
            bias = bias + beta[:, None]  # rows of mel_to_linear sum to 1: a shift commutes with it
        head = F.interpolate(self.head(x), size=(cfg.n_mels, cfg.n_frames), mode="bilinear")
        logits = head[:, 0] + bias[:, :, None]
        w = self.mel_to_linear.to(logits.dtype)
        if cfg.domain == "mel":
            return torch.einsum("fm,nmt->nft", w, torch.sigmoid(logits))
        lin = torch.einsum("fm,nmt->nft", w, logits)
        if (alpha is not None or self.feature_gate) and magnitude is None:
            raise ValueError("the stft energy gate needs the clips' magnitude")
        if alpha is not None:
            self._add_gate_(lin, alpha, _standardised_log(magnitude).to(lin.dtype), clip_index)
        elif self.feature_gate:
            slope = torch.einsum("fm,nmt->nft", w, head[:, 1])
            lin.addcmul_(slope, _standardised_log(magnitude).to(lin.dtype)[clip_index])
        return lin.sigmoid_()  # in place: neither the product nor the gate saves ``lin`` for backward

    @staticmethod
    def _add_gate_(
        lin: torch.Tensor, alpha: torch.Tensor, z: torch.Tensor, clip_index: torch.Tensor
    ) -> None:
        """``lin += alpha[n] * z[clip_index[n]]``; broadcasts instead of gathering for grouped pairs."""
        n, b = lin.shape[0], z.shape[0]
        if n % b == 0 and torch.equal(
            clip_index, torch.arange(b, device=clip_index.device).repeat_interleave(n // b)
        ):
            lin.view(b, n // b, *lin.shape[1:]).addcmul_(alpha.view(b, n // b, 1, 1), z[:, None])
        else:
            lin.addcmul_(alpha[:, None, None], z[clip_index])


def _channel_normalised(h: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] centred over channels and scaled to unit RMS at every location."""
    h = h - h.mean(1, keepdim=True)
    return h * torch.rsqrt((h * h).mean(1, keepdim=True) + 1e-6)


def _standardised_log(magnitude: torch.Tensor) -> torch.Tensor:
    """Per-clip standardised log-magnitude [B, F, T] (mean 0, std 1 over each clip's bins)."""
    logmag = torch.log(magnitude.float() + 1e-5)
    mu = logmag.mean((1, 2), keepdim=True)
    var = (logmag * logmag).mean((1, 2), keepdim=True) - mu * mu  # far faster than .std() on CPU
    return (logmag - mu) * torch.rsqrt(var.clamp_min(1e-6))


def _needs_transpose(h: int, w: int, n_mels: int, n_frames: int) -> bool:
    """True when an [h, w] map looks laid out as [time, freq] rather than [freq, time]."""
    target = math.log(n_mels / n_frames)
    return abs(math.log(w / h) - target) < abs(math.log(h / w) - target)
