"""Hugging Face transformers ``ClapModel`` as a :class:`ZeroShotModel`.

``ClapFeatureExtractor`` is numpy (not differentiable), so the front end is
re-expressed in torch from the linear magnitude, with the checkpoint's own
extractor settings and filters:

    wave --fit_window--> window (repeatpad / repeat / pad; crop at ``offset``)
         --torch.stft (periodic Hann, centred, reflect)--> |X|
         --input_transform--> |X|^2 -> extractor's mel filters -> max(., 1e-10) -> 10 log10
         --encode--> ClapAudioEncoder (its own batch norm, bicubic stretch, Swin stages,
                     pooling) -> audio_projection -> L2 normalise

Everything after the dB features calls transformers' own modules, so an unmasked
clip gives ``get_audio_features`` of the extractor's output
(tests/test_hf_parity.py). ``truncation="rand_trunc"`` checkpoints use the
extractor's Slaney filterbank, ``"fusion"`` ones its HTK filterbank, 4 identical
input channels and ``is_longer=True``: what the extractor and
``pipeline("zero-shot-audio-classification")`` give a single clip of at most one
window. Longer clips are explained window by window (``lmaczs_cli.windows``). For a fusion
checkpoint, :meth:`HfClap.encode_fused` sees a whole long clip as the extractor does
(a shrunken full clip plus 3 crops, chosen by a deterministic rule instead of at
random: :mod:`lmaczs_cli.models.fusion`; tests/test_laion_fusion.py).

Swin stage outputs come in HTSAT's folded layout (time chunks stacked along the
rows of a square image); :func:`tokens_to_grid` regroups them to ``[B, C, freq,
time]`` exactly as for LAION-CLAP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.base import PADDINGS, Encoded, Window, ZeroShotModel, fill_window
from lmaczs_cli.models.fusion import DEFAULT_RULE, crop_starts, fused_mel, fusion_record
from lmaczs_cli.models.laion.model import tokens_to_grid
from lmaczs_cli.signal import STFTConfig

MEL_FLOOR = 1e-10  # ClapFeatureExtractor's mel_floor and power_to_db's min_value
TRUNCATIONS = ("rand_trunc", "fusion")


def extractor_filters(extractor: Any) -> np.ndarray:
    """The filterbank [F, n_mels] the extractor applies for its own truncation mode."""
    if extractor.truncation == "fusion":
        return np.asarray(extractor.mel_filters)  # HTK scale, no norm
    return np.asarray(extractor.mel_filters_slaney)  # Slaney scale and norm


def weights_fingerprint(clap: nn.Module) -> str:
    """Short digest of the projection heads, logit scales and patch embedding (decoder matching)."""
    h = hashlib.sha256()
    sd = clap.state_dict()
    for key in sorted(sd):
        if key.startswith(("audio_projection.", "text_projection.", "logit_scale")) or key.endswith(
            "patch_embed.proj.weight"
        ):
            h.update(key.encode())
            h.update(sd[key].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class HfClap(ZeroShotModel):
    """A transformers ``ClapModel`` seen through its linear magnitude spectrogram."""

    def __init__(self, clap: nn.Module, extractor: Any, tokenizer: Any, name: str, source: str) -> None:
        super().__init__()
        self.clap = clap
        self.name = name
        #: where the weights came from: a folder, or "random"
        self.source = source
        self.checkpoint_path = None if source == "random" else str(source)
        self.tokenizer = tokenizer
        self.padding = str(extractor.padding)
        self.truncation = str(extractor.truncation)
        self._check_extractor(extractor)
        self.sample_rate = int(extractor.sampling_rate)
        self.window_seconds = float(extractor.max_length_s)
        n_fft = int(extractor.fft_window_size)
        self.stft_config = STFTConfig(n_fft=n_fft, hop_length=int(extractor.hop_length), win_length=n_fft)
        self.n_mels = int(extractor.feature_size)
        fb = torch.as_tensor(extractor_filters(extractor), dtype=torch.float32)
        self.register_buffer("mel_fb", fb, persistent=False)  # [F, n_mels]
        self.fingerprint = weights_fingerprint(clap)
        text_cfg = clap.config.text_config
        limit = int(getattr(tokenizer, "model_max_length", 10**9) or 10**9)
        self.max_text_tokens = min(limit, int(text_cfg.max_position_embeddings) - 2)

    def _check_extractor(self, fe: Any) -> None:
        enc = self._audio
        frames = int(fe.max_length_s * fe.sampling_rate) // int(fe.hop_length) + 1
        if self.padding not in PADDINGS or self.truncation not in TRUNCATIONS:
            raise UsageError(
                f"{self.name}: feature extractor padding={self.padding!r} truncation={self.truncation!r} "
                f"not supported (padding: {', '.join(PADDINGS)}; truncation: {', '.join(TRUNCATIONS)})"
            )
        if (self.truncation == "fusion") != bool(enc.enable_fusion):
            raise UsageError(
                f"{self.name}: extractor truncation={self.truncation!r} does not fit a model with "
                f"enable_fusion={enc.enable_fusion}"
            )
        if int(fe.feature_size) != enc.config.num_mel_bins or frames > enc.spec_size * enc.freq_ratio:
            raise UsageError(
                f"{self.name}: extractor gives {fe.feature_size} mels x {frames} frames; the audio "
                f"encoder takes {enc.config.num_mel_bins} mels and at most {enc.spec_size * enc.freq_ratio}"
            )

    # -- signal side ------------------------------------------------------------------
    def fit_window(self, wave: torch.Tensor, offset: int = 0) -> Window:
        """The extractor's own policy, made deterministic (no int16 step).

        - shorter than the window: ``repeatpad`` - whole copies, then zeros;
          ``repeat`` - copies cut at the window end; ``pad`` - zeros. ``valid``
          counts the first copy only;
        - longer: the extractor's ``rand_trunc`` takes a random window; we take the
          one starting at ``offset`` samples (default 0, the start).
        """
        return fill_window(wave, self.window_samples, offset, self.padding)

    # -- model side -------------------------------------------------------------------
    @property
    def _audio(self) -> nn.Module:
        return self.clap.audio_model.audio_encoder

    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``|X|`` [B, F, T] -> the extractor's dB log-mel [B, n_mels, T]."""
        mel = torch.einsum("bft,fm->bmt", magnitude.pow(2), self.mel_fb.to(magnitude.dtype))
        return 10.0 * torch.log10(mel.clamp_min(MEL_FLOOR))

    def encode(self, magnitude: torch.Tensor) -> Encoded:
        return self.encode_features(self.input_transform(magnitude))

    def encode_features(self, logmel: torch.Tensor) -> Encoded:
        """Embedding and Swin stage maps [B, C, freq, time] from dB log-mel [B, n_mels, T]."""
        x = logmel.transpose(1, 2).unsqueeze(1)  # B, 1, T, M: input_features layout
        is_longer = None
        if self.truncation == "fusion":
            x = x.expand(-1, 4, -1, -1)  # the extractor stacks 4 copies for clips <= one window
            is_longer = torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device)
        return self._encode_input(x, is_longer)

    def _encode_input(self, x: torch.Tensor, is_longer: torch.Tensor | None) -> Encoded:
        """``input_features`` [B, C, T, M] (and ``is_longer``) -> embedding and stage maps."""
        enc = self._audio
        out = enc(
            input_features=x,
            is_longer=is_longer,
            output_hidden_states=True,
            output_hidden_states_before_downsampling=True,
            return_dict=True,
        )
        emb = self.clap.audio_projection(out.pooler_output)
        hidden = [  # hidden_states[0] is the patch embedding; then one map per Swin stage
            tokens_to_grid(h.flatten(2).transpose(1, 2), tuple(h.shape[-2:]), enc.freq_ratio)
            for h in out.hidden_states[1:]
        ]
        return Encoded(F.normalize(emb, dim=-1), hidden)

    # -- the whole clip (fusion checkpoints) ---------------------------------------------
    #: how the 3 crops of a long clip are chosen (:func:`lmaczs_cli.models.fusion.crop_starts`)
    crop_rule: str = DEFAULT_RULE

    @property
    def fuses_long_clips(self) -> bool:  # type: ignore[override]
        """True for a fusion checkpoint (``laion/clap-htsat-fused``): told from its extractor's
        ``truncation="fusion"`` (checked against the encoder's ``enable_fusion`` when loading)."""
        return self.truncation == "fusion"

    @property
    def chunk_frames(self) -> int:
        """Frames of one window (the extractor's ``max_length // hop_length + 1``)."""
        return self.window_samples // self.stft_config.hop_length + 1

    def fused_input(
        self, magnitude: torch.Tensor, starts: tuple[int, int, int] | None = None
    ) -> torch.Tensor:
        """Whole-clip ``|X|`` [B, F, T] (T > one window) -> the extractor's fused
        ``input_features`` [B, 4, chunk, n_mels] with crops at ``starts`` (default: :attr:`crop_rule`)."""
        t = magnitude.shape[-1]
        starts = starts if starts is not None else crop_starts(t, self.chunk_frames, self.crop_rule)
        mel = self.input_transform(magnitude).transpose(1, 2)  # B, T, M
        return fused_mel(mel, self.chunk_frames, starts, antialias=False)  # plain interpolate

    def encode_fused(self, magnitude: torch.Tensor, starts: tuple[int, int, int] | None = None) -> Encoded:
        """Embedding of a whole clip's magnitude [B, F, T] as a fusion checkpoint sees it.

        Up to one window: :meth:`encode`. Longer: the shrunk whole clip + 3 crops
        (``_random_mel_fusion`` with deterministic starts), ``is_longer=True``.
        Differentiable in ``magnitude``, so a mask over the whole clip explains it.
        """
        if self.truncation != "fusion":
            raise UsageError(f"{self.name}: not a fusion checkpoint (truncation={self.truncation!r})")
        if magnitude.shape[-1] <= self.chunk_frames:
            return self.encode(magnitude)
        x = self.fused_input(magnitude, starts)
        return self._encode_input(x, torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device))

    def fusion_record(self, n_samples: int) -> dict[str, object]:
        """What a run records for a clip of ``n_samples``: rule, crop starts (frames), sizes."""
        total = self.stft_config.n_frames(n_samples)
        longer = self.truncation == "fusion" and total > self.chunk_frames
        starts = crop_starts(total, self.chunk_frames, self.crop_rule) if longer else None
        return fusion_record(total, self.chunk_frames, starts, self.crop_rule)

    # -- text side --------------------------------------------------------------------
    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """As ``ClapProcessor``: pad to the longest prompt; truncate at the model's limit."""
        enc = self.tokenizer(list(prompts), padding=True, truncation=True,
                             max_length=self.max_text_tokens, return_tensors="pt")
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask")}

    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """``ClapModel.get_text_features`` (an output object in transformers 5, a tensor in 4)."""
        out = self.clap.get_text_features(**self.tokenize(prompts))
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        return F.normalize(emb, dim=-1)

    # -- model facts ------------------------------------------------------------------
    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale_a)``: what ``ClapModel`` multiplies ``logits_per_audio`` by."""
        return float(self.clap.logit_scale_a.detach().exp())

    def mel_filterbank(self) -> torch.Tensor:
        return self.mel_fb.detach().T  # [n_mels, F]

    def randomisable_blocks(
        self, granularity: Literal["stage", "block"] = "stage"
    ) -> list[tuple[str, nn.Module]]:
        """Input side first: patch embedding, the Swin stages (or their blocks and
        patch-merging layers), the final norm, the audio projection head."""
        enc, pre = self._audio, "audio_model.audio_encoder"
        out: list[tuple[str, nn.Module]] = [(f"{pre}.patch_embed", enc.patch_embed)]
        for i, stage in enumerate(enc.layers):
            if granularity == "stage":
                out.append((f"{pre}.layers.{i}", stage))
                continue
            out += [(f"{pre}.layers.{i}.blocks.{j}", blk) for j, blk in enumerate(stage.blocks)]
            if stage.downsample is not None:
                out.append((f"{pre}.layers.{i}.downsample", stage.downsample))
        out += [(f"{pre}.norm", enc.norm), ("audio_projection", self.clap.audio_projection)]
        return out

    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """The encoder's final ``norm`` (last Swin stage), tokens -> [B, C, freq, time]."""
        enc = self._audio
        last = tuple(enc.input_resolutions[-1])
        ratio = enc.freq_ratio

        def reshape(tokens: torch.Tensor) -> torch.Tensor:
            return tokens_to_grid(tokens, last, ratio)

        return enc.norm, reshape

    def spec_id(self) -> dict[str, object]:
        """Adds ``weights``: a digest of the weights, so a decoder follows the exact checkpoint."""
        return {**super().spec_id(), "weights": self.fingerprint}
