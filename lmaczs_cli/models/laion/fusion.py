"""LAION-CLAP *fusion* checkpoints (``630k-audioset-fusion-best.pt``) as a :class:`ZeroShotModel`.

Same upstream ``CLAP`` module as :mod:`lmaczs_cli.models.laion.model`, built with
``enable_fusion=True, fusion_type="aff_2d"`` (what ``CLAP_Module(enable_fusion=True)``
builds). The package feeds a fusion model ``get_mel``'s features (torchaudio
``MelSpectrogram``: HTK mel scale, no norm, ``fmin``/``fmax`` of the config, then
``AmplitudeToDB``), not the torchlibrosa ``logmel_extractor`` the non-fusion path uses:

- a clip of at most one window (``encode``): 4 copies of its mel, ``longer=False``;
  the package's eval path then reads only the first (``patch_embed`` with no fused rows);
- a longer clip (``encode_fused`` of the *whole* clip's magnitude): the fused view of
  :mod:`lmaczs_cli.models.fusion` (shrunk whole clip + 3 crops at deterministic starts),
  ``longer=True``, the AFF block of ``patch_embed`` mixing the crops into the global view.

Parity with ``CLAP_Module.get_audio_embedding_from_data`` (given the same crop starts):
tests/test_laion_fusion.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.base import Encoded
from lmaczs_cli.models.fusion import DEFAULT_RULE, crop_starts, fused_mel, fusion_record, htk_filterbank
from lmaczs_cli.models.laion.checkpoint import (
    DEFAULT_FUSION_CHECKPOINTS,
    checkpoint_amodel,
    laion_state_dict,
    read_checkpoint,
    resolve_checkpoint,
)
from lmaczs_cli.models.laion.model import (
    LaionClap,
    build_clap,
    finish_model,
    htsat_forward_features,
    load_or_randomise,
    tokenizer_stub,
)

AMIN = 1e-10  # AmplitudeToDB's amin (ref 1.0, top_db None)
#: the package's fusion checkpoint (model id 3 in ``CLAP_Module.load_ckpt``)
DEFAULT_FUSION_CHECKPOINT = DEFAULT_FUSION_CHECKPOINTS["HTSAT-tiny"]


class LaionClapFused(LaionClap):
    """A LAION-CLAP fusion checkpoint; ``encode_fused`` sees a long clip as the package does."""

    def __init__(self, *args: Any, crop_rule: str = DEFAULT_RULE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self._audio, "enable_fusion", False):
            raise ValueError("LaionClapFused needs a CLAP module built with enable_fusion=True")
        a = self.model_cfg["audio_cfg"]
        fb = htk_filterbank(self.n_freqs, self.n_mels, self.sample_rate, a["fmin"], a["fmax"])
        self.register_buffer("mel_fb", fb, persistent=False)  # [F, n_mels]
        #: how the 3 crops of a long clip are chosen (:func:`lmaczs_cli.models.fusion.crop_starts`)
        self.crop_rule = crop_rule

    fuses_long_clips = True

    def whole_clip_wave(self, wave: torch.Tensor) -> torch.Tensor:
        """The package's int16 round trip, applied to the whole clip before its fused view."""
        return self._quantized(wave)

    @property
    def chunk_frames(self) -> int:
        """Frames of one window (the package's ``max_len // hop_size + 1``)."""
        return self.window_samples // self.stft_config.hop_length + 1

    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``|X|`` [B, 513, T] -> ``get_mel``'s dB mel [B, 64, T] (HTK filters, no norm)."""
        mel = torch.einsum("bft,fm->bmt", magnitude.pow(2), self.mel_fb.to(magnitude.dtype))
        return 10.0 * torch.log10(mel.clamp_min(AMIN))

    def _forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return htsat_forward_features(self._audio, x, longer_idx=[])  # no fused rows

    # -- the whole clip -----------------------------------------------------------------
    def fused_input(
        self, magnitude: torch.Tensor, starts: tuple[int, int, int] | None = None
    ) -> torch.Tensor:
        """Whole-clip ``|X|`` [B, F, T] (T > one window) -> the package's ``mel_fusion`` [B, 4, chunk, 64]."""
        t = magnitude.shape[-1]
        starts = starts if starts is not None else crop_starts(t, self.chunk_frames, self.crop_rule)
        mel = self.input_transform(magnitude).transpose(1, 2)  # B, T, M
        return fused_mel(mel, self.chunk_frames, starts, antialias=True)  # torchvision Resize

    def encode_fused(self, magnitude: torch.Tensor, starts: tuple[int, int, int] | None = None) -> Encoded:
        """Embedding of a whole clip's magnitude [B, F, T], differentiable in it.

        ``T`` up to one window (``chunk_frames``): the package does not fuse; this is
        :meth:`encode`. Longer: shrunk global view + crops at ``starts`` (default: this
        model's :attr:`crop_rule`), all rows ``longer``.
        """
        if magnitude.shape[-1] <= self.chunk_frames:
            return self.encode(magnitude)
        x = self.fused_input(magnitude, starts)  # B, 4, T, M
        ab = self._audio
        x = ab.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = ab.reshape_wav2img(x)
        rows = torch.arange(x.shape[0], device=x.device)
        latent, hidden = htsat_forward_features(ab, x, longer_idx=rows)
        emb = self.clap.audio_projection(latent)
        return Encoded(F.normalize(emb, dim=-1), hidden)

    def fusion_record(self, n_samples: int) -> dict[str, object]:
        """What a run records for a clip of ``n_samples``: rule, crop starts (frames), sizes."""
        total = self.stft_config.n_frames(n_samples)
        starts = crop_starts(total, self.chunk_frames, self.crop_rule) if total > self.chunk_frames else None
        return fusion_record(total, self.chunk_frames, starts, self.crop_rule)

    def spec_id(self) -> dict[str, object]:
        """Adds the fusion crop rule (a decoder must see the same view)."""
        return {**super().spec_id(), "fusion": self.crop_rule}


# -- building -------------------------------------------------------------------------


def build_laion_fused(
    amodel: str,
    name: str,
    ckpt: str | os.PathLike[str] | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    crop_rule: str = DEFAULT_RULE,
) -> LaionClapFused:
    """Resolve a fusion checkpoint (``ckpt``: a file, or ``"random"``), build, load, move."""
    path = resolve_checkpoint(ckpt, amodel, fusion=True)
    stub = tokenizer_stub(tokenizer_dir, path)
    sd = None
    if path is not None:
        sd = laion_state_dict(read_checkpoint(path), str(path), fusion=True)
        found = checkpoint_amodel(sd, str(path))
        if found != amodel:
            raise UsageError(f"{path} holds an {found} audio encoder, not {amodel}")
    clap, cfg = build_clap(amodel, seed, fusion=True)
    load_or_randomise(clap, sd, path, amodel, name, seed, stub)
    model = LaionClapFused(clap, cfg, name, path.name if path else "random", tokenizer_dir,
                           crop_rule=crop_rule)
    return finish_model(model, path, stub, device)


def build_htsat_tiny_fusion(
    ckpt: str | None = None,
    tokenizer_dir: Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **_: Any,
) -> LaionClapFused:
    """``laion-htsat-tiny-fusion``: default checkpoint 630k-audioset-fusion-best.pt."""
    return build_laion_fused("HTSAT-tiny", "laion-htsat-tiny-fusion", ckpt, tokenizer_dir, device, seed)
