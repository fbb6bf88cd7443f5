"""The ``ZeroShotModel`` interface: what every explained CLAP-style model provides.

A model turns a *linear magnitude spectrogram* (possibly masked) into an
L2-normalised audio embedding through its own input transform, differentiably,
and embeds text prompts into the same space. Everything else in lmaczs
(explainers, metrics, writers) talks to models only through this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from lmaczs_cli.signal import STFTConfig, istft, stft


@dataclass
class Encoded:
    """Output of :meth:`ZeroShotModel.encode`.

    ``embedding``: [B, D], L2-normalised. ``hidden``: intermediate feature maps
    [B, C, H, W], ordered from shallow to deep, that decoders and GradCAM read.
    ``features``: the input features the hidden maps were computed from, where a model hands
    them on (the small model's log-mel, which its domain check reads again); None otherwise.
    """

    embedding: torch.Tensor
    hidden: list[torch.Tensor] = field(default_factory=list)
    features: torch.Tensor | None = None


@dataclass(frozen=True)
class Window:
    """A clip fitted to the model's fixed input window.

    ``wave``: [N_window] samples fed to the model. ``valid``: how many leading
    samples of ``wave`` are real audio from the clip (the rest is the model's
    padding; for repeat-padding models the repeats are *not* counted as valid).
    """

    wave: torch.Tensor
    valid: int


#: how a clip shorter than the window is filled: whole copies then zeros, copies cut at the
#: window's end, or zeros
PADDINGS = ("repeatpad", "repeat", "pad")


def fill_window(wave: torch.Tensor, n: int, offset: int = 0, padding: str = "pad") -> Window:
    """Fit a mono clip [N] to ``n`` samples: the crop starting at ``offset`` when longer,
    else filled by ``padding`` (one of :data:`PADDINGS`); ``valid`` counts the first copy only."""
    from lmaczs_cli.errors import AudioError

    if wave.dim() != 1:
        raise ValueError(f"fit_window expects a mono clip [N], got {tuple(wave.shape)}")
    n_in = int(wave.shape[0])
    if n_in == 0:
        raise AudioError("<clip>", "empty audio (0 samples)")
    if n_in >= n:
        if not 0 <= offset <= n_in - n:
            raise ValueError(f"offset {offset} outside [0, {n_in - n}]")
        return Window(wave[offset : offset + n], n)
    if padding == "repeat":
        return Window(wave.repeat(n // n_in + 1)[:n], n_in)
    copies = wave.repeat(n // n_in) if padding == "repeatpad" else wave
    return Window(torch.nn.functional.pad(copies, (0, n - copies.shape[0])), n_in)


def torchlibrosa_logmel(extractor: nn.Module, magnitude: torch.Tensor) -> torch.Tensor:
    """``|X|`` [B, F, T] -> log-mel [B, n_mels, T] through a torchlibrosa ``LogmelFilterBank``
    (the front end of LAION-CLAP and MS-CLAP), which takes power in its [B, 1, T, F] layout."""
    power = magnitude.pow(2).transpose(1, 2).unsqueeze(1)
    return extractor(power).squeeze(1).transpose(1, 2)


class ZeroShotModel(nn.Module, ABC):
    """A frozen zero-shot audio–text model seen through its linear spectrogram."""

    #: registry name, e.g. ``"laion-htsat-tiny"`` or ``"small"``
    name: str = ""
    sample_rate: int
    window_seconds: float
    stft_config: STFTConfig
    n_mels: int
    #: the weights file (or folder) the model was loaded from; None: seeded random weights
    checkpoint_path: str | None = None
    #: random weights with a stand-in text tokenizer (no tokenizer files were found)
    stub_tokenizer: bool = False

    #: True when the model sees a clip longer than one window *whole* (LAION feature fusion: the
    #: whole clip shrunk to one window plus crops, :mod:`lmaczs_cli.models.fusion`). Such a model
    #: has ``encode_fused(magnitude)`` (embedding of a whole clip's magnitude, differentiable),
    #: ``fusion_record(n_samples)`` (the recorded crop rule and positions) and
    #: :meth:`whole_clip_wave`; explain and classify score a long clip with ``encode_fused``.
    fuses_long_clips: bool = False

    def whole_clip_wave(self, wave: torch.Tensor) -> torch.Tensor:
        """A whole clip [..., N] as the model's own input policy gives it to ``encode_fused``
        (LAION: the int16 round trip); the identity by default."""
        return wave

    @property
    def random_weights(self) -> bool:
        """True when the weights are random (``--clap-ckpt random``): results mean nothing."""
        return self.checkpoint_path is None

    def domain_check(self, embeddings: torch.Tensor, encoded: Encoded | None = None,
                     magnitude: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per clip, True when a clip looks like the audio the model knows, from its embedding
        [B, D] and, where a model reads more, the ``encoded`` output (hidden maps) and the
        ``magnitude`` [B, F, T] that made it; None when the model cannot tell (the default)."""
        return None

    # -- signal side -------------------------------------------------------
    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def n_freqs(self) -> int:
        return self.stft_config.n_freqs

    @property
    def n_frames(self) -> int:
        """Frames of the spectrogram of one full window."""
        return self.stft_config.n_frames(self.window_samples)

    def spectrogram(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``wave`` [B, N] -> ``(magnitude, phase)``, each [B, F, T]."""
        return stft(wave, self.stft_config)

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int) -> torch.Tensor:
        """Resynthesise [B, length] from a (masked) magnitude and the original phase."""
        return istft(magnitude, phase, self.stft_config, length)

    def fit_window(self, wave: torch.Tensor) -> Window:
        """Fit a mono clip [N] to the model's window with the model's own policy.

        Default: crop to the window from the start, or zero-pad at the end.
        Models override this with their upstream policy (LAION: repeat-pad).
        """
        n = self.window_samples
        if wave.shape[-1] >= n:
            return Window(wave[..., :n], n)
        out = torch.zeros(n, dtype=wave.dtype, device=wave.device)
        out[: wave.shape[-1]] = wave
        return Window(out, int(wave.shape[-1]))

    # -- model side --------------------------------------------------------
    @abstractmethod
    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """The model's own input features from a linear magnitude [B, F, T] (e.g. log-mel)."""

    @abstractmethod
    def encode(self, magnitude: torch.Tensor) -> Encoded:
        """Differentiable audio embedding (and hidden maps) of a magnitude [B, F, T]."""

    @torch.no_grad()
    def silence_embedding(self) -> torch.Tensor:
        """Audio embedding [1, D] (float32) of an all-zero magnitude: digital silence, or a clip
        with every bin masked out."""
        return self.encode(torch.zeros(1, self.n_freqs, self.n_frames, device=self.device)).embedding.float()

    @abstractmethod
    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """Normalised text embeddings [P, D], uncached."""

    @property
    @abstractmethod
    def logit_scale(self) -> float:
        """Multiplier turning cosine similarities into zero-shot logits."""

    @abstractmethod
    def mel_filterbank(self) -> torch.Tensor:
        """The model's mel filterbank [n_mels, F] (linear bins -> mel bins)."""

    @abstractmethod
    def randomisable_blocks(self) -> list[tuple[str, nn.Module]]:
        """Audio-encoder blocks, input side first, for cascading randomisation."""

    @abstractmethod
    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """The layer GradCAM hooks and a reshape transform to [B, C, H, W] (or None)."""

    # -- shared conveniences ----------------------------------------------
    def embed_text(self, prompts: Sequence[str], batch_size: int = 1) -> torch.Tensor:
        """Normalised text embeddings [P, D], computed once per prompt and cached.

        By default each prompt is embedded on its own, so its embedding does not depend on
        which other prompts were asked for with it (batched matrix products round differently
        by batch size): a resumed training run then sees the very same numbers. Long label
        lists are embedded ``batch_size`` at a time (many times faster; the same list gives
        the same numbers, which agree with one-by-one ones to float rounding).
        """
        cache: dict[str, torch.Tensor] = self.__dict__.setdefault("_text_cache", {})
        missing = [p for p in dict.fromkeys(prompts) if p not in cache]
        step = max(1, int(batch_size))
        for i in range(0, len(missing), step):
            chunk = missing[i : i + step]
            with torch.no_grad():
                cache.update(zip(chunk, self._embed_text(chunk).detach(), strict=True))
        return torch.stack([cache[p] for p in prompts]).to(self.device)

    def clear_text_cache(self) -> None:
        self.__dict__.pop("_text_cache", None)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def similarity(self, magnitude: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Cosine similarities [B, P] between audio from ``magnitude`` and text [P, D]."""
        return self.encode(magnitude).embedding @ text.T

    def spec_id(self) -> dict[str, object]:
        """What a decoder trained for this model must match (model id and input grid)."""
        return {
            "model": self.name,
            "sample_rate": self.sample_rate,
            "n_fft": self.stft_config.n_fft,
            "hop_length": self.stft_config.hop_length,
            "n_mels": self.n_mels,
            "n_frames": self.n_frames,
        }
