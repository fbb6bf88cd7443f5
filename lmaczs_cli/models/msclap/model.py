"""Microsoft CLAP (``msclap``) 2022 and 2023 as :class:`ZeroShotModel` s.

MS-CLAP 2022 is the model the LMAC-ZS paper explained: CNN14 audio encoder
(six convolutional blocks) + BERT-base-uncased text encoder. MS-CLAP 2023 swaps
in HTSAT + GPT-2. The weights live in the upstream ``CLAP`` module
(``msclap.models.clap``, loaded without side effects, see :mod:`lmaczs_cli.models.msclap.upstream`);
this class re-expresses only the audio *front end* so that it starts from a
linear magnitude spectrogram and stays differentiable:

    wave --fit_window--> window (5 s / 7 s at 44.1 kHz) --torch.stft--> |X|
         --input_transform--> log-mel (the module's own ``logmel_extractor``)
         --encode--> 2022: bn0 -> conv_block1..6 -> mean over freq -> max + mean
                     over time -> fc1 -> projection
                     2023: bn0 -> reshape_wav2img -> Swin stages -> norm -> pool
                     -> projection
         -> L2 normalise

Everything after ``|X|`` calls the upstream modules in the order ``Cnn14.forward``
/ ``HTSAT_Swin_Transformer.forward`` and ``AudioEncoder.forward`` use, so an
unmasked clip gives the package's own embedding (tests/test_msclap_parity.py
compares with ``CLAPWrapper.get_audio_embeddings``).

Hidden maps are [B, C, freq, time]: CNN14's blocks compute on [time, mel] and are
transposed; HTSAT's stages are regrouped with :func:`lmaczs_cli.models.laion.model.tokens_to_grid`. The
2023 mel filterbank is the one HTSAT builds from ``msclap/models/config.py``
(sr 32000, fmax 14000, applied to 44.1 kHz audio as the package does), not the
YAML's values, which the package never uses for HTSAT.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lmaczs_cli.errors import RandomWeightsWarning, UsageError
from lmaczs_cli.models.base import Encoded, Window, ZeroShotModel, fill_window, torchlibrosa_logmel
from lmaczs_cli.models.laion.model import htsat_blocks, htsat_forward_features, tokens_to_grid
from lmaczs_cli.models.msclap.checkpoint import (
    MODEL_NAMES,
    load_strict,
    read_msclap_checkpoint,
    resolve_checkpoint,
)
from lmaczs_cli.models.msclap.text import (
    bert_vocab_dir,
    load_bert_tokenizer,
    load_gpt2_tokenizer,
    resolve_gpt2_dir,
    tokenize,
)
from lmaczs_cli.models.msclap.upstream import load_upstream
from lmaczs_cli.signal import STFTConfig

#: (pool size) of each CNN14 conv block, as ``Cnn14.forward`` calls them
CNN14_POOLS = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 1))


class MsClap(ZeroShotModel):
    """A Microsoft CLAP checkpoint seen through its linear magnitude spectrogram."""

    sample_rate = 44100
    stft_config = STFTConfig(n_fft=1024, hop_length=320, win_length=1024)
    n_mels = 64
    version: str = ""

    def __init__(
        self,
        clap: nn.Module,
        cfg: dict[str, Any],
        checkpoint: str,
        tokenizer_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.clap = clap
        self.cfg = cfg
        self.name = MODEL_NAMES[self.version]
        #: file name of the loaded checkpoint, or "random"
        self.checkpoint = checkpoint
        self._tokenizer_dir = tokenizer_dir
        self._tokenizer: Any = None
        ours = (cfg["sampling_rate"], cfg["window_size"], cfg["hop_size"], cfg["mel_bins"],
                float(cfg["duration"]))
        if ours != (44100, 1024, 320, 64, self.window_seconds):
            raise ValueError(f"unsupported MS-CLAP {self.version} config {cfg}")

    # -- signal side ------------------------------------------------------------------
    def fit_window(self, wave: torch.Tensor, offset: int = 0) -> Window:
        """``CLAPWrapper.load_audio_into_tensor``, made deterministic.

        - shorter than the window: the clip tiled ``ceil(N_win / N)`` times and cut
          to the window (the last copy is partial); ``valid`` counts the first copy;
        - longer: the package crops at ``random.randrange(N - N_win)``; we take the
          crop starting at ``offset`` samples (default 0, the start).

        Multichannel files: the package flattens ``[C, N]`` into one ``C * N`` signal
        (channels one after the other) before this step; lmaczs's loader downmixes to
        mono instead, so stereo input differs from the package by design.
        """
        return fill_window(wave, self.window_samples, offset, "repeat")

    # -- model side -------------------------------------------------------------------
    @property
    def frontend(self) -> nn.Module:
        """The upstream module holding ``logmel_extractor`` and ``bn0``."""
        raise NotImplementedError

    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``|X|`` [B, 513, T] -> log-mel [B, 64, T] via the module's ``logmel_extractor``."""
        return torchlibrosa_logmel(self.frontend.logmel_extractor, magnitude)

    def encode(self, magnitude: torch.Tensor) -> Encoded:
        return self.encode_features(self.input_transform(magnitude))

    def encode_features(self, logmel: torch.Tensor) -> Encoded:
        """Embedding and hidden maps from log-mel features [B, 64, T]."""
        x = logmel.transpose(1, 2).unsqueeze(1)  # B, 1, T, M
        x = self.frontend.bn0(x.transpose(1, 3)).transpose(1, 3)
        latent, hidden = self._features(x)
        emb = self.clap.audio_encoder.projection(latent)
        return Encoded(F.normalize(emb, dim=-1), hidden)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    # -- text side --------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The text tokenizer, located and loaded on first use."""
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer()
        return self._tokenizer

    def _load_tokenizer(self):
        raise NotImplementedError

    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """As ``CLAPWrapper.preprocess_text`` (see :func:`lmaczs_cli.models.msclap.text.tokenize`)."""
        gpt2 = self.cfg["text_model"] == "gpt2"
        base = self.clap.caption_encoder.base
        limit = base.config.n_positions if gpt2 else base.config.max_position_embeddings
        return tokenize(self.tokenizer, prompts, int(self.cfg["text_len"]), gpt2, int(limit))

    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """``TextEncoder.forward`` (BERT CLS / GPT-2 last token -> projection), normalised."""
        tokens = {k: v.to(self.device) for k, v in self.tokenize(prompts).items()}
        return F.normalize(self.clap.caption_encoder(tokens), dim=-1)

    # -- model facts ------------------------------------------------------------------
    @property
    def logit_scale(self) -> float:
        return float(self.clap.logit_scale.detach().exp())

    def mel_filterbank(self) -> torch.Tensor:
        return self.frontend.logmel_extractor.melW.detach().T  # [64, 513]


class MsClap2022(MsClap):
    """``ms-clap-2022``: CNN14 + BERT-base-uncased, 5 s windows (the paper's model)."""

    version = "2022"
    window_seconds = 5.0

    @property
    def frontend(self) -> nn.Module:
        return self.clap.audio_encoder.base  # Cnn14

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``Cnn14.forward`` after bn0 (eval: dropout is the identity), keeping each block's map."""
        cnn = self.frontend
        hidden: list[torch.Tensor] = []
        for i, pool in enumerate(CNN14_POOLS, start=1):
            x = getattr(cnn, f"conv_block{i}")(x, pool_size=pool, pool_type="avg")
            hidden.append(x.transpose(2, 3))  # B, C, T, M -> B, C, freq, time
        x = torch.mean(x, dim=3)
        x = torch.max(x, dim=2)[0] + torch.mean(x, dim=2)
        return F.relu(cnn.fc1(x)), hidden

    def _load_tokenizer(self):
        return load_bert_tokenizer(bert_vocab_dir(self._tokenizer_dir))

    def randomisable_blocks(
        self, granularity: Literal["stage", "block"] = "stage"
    ) -> list[tuple[str, nn.Module]]:
        """Input side first: conv_block1..6, fc1, the audio projection (same at both
        granularities: a CNN14 block is the unit the paper randomises)."""
        cnn = self.frontend
        out = [(f"audio_encoder.base.conv_block{i}", getattr(cnn, f"conv_block{i}"))
               for i in range(1, 7)]
        return out + [("audio_encoder.base.fc1", cnn.fc1),
                      ("audio_encoder.projection", self.clap.audio_encoder.projection)]

    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """``conv_block6`` (the last convolutional map), [B, C, T, M] -> [B, C, freq, time]."""
        return self.frontend.conv_block6, _freq_time


def _freq_time(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-1, -2)


class MsClap2023(MsClap):
    """``ms-clap-2023``: HTSAT + GPT-2, 7 s windows."""

    version = "2023"
    window_seconds = 7.0

    @property
    def frontend(self) -> nn.Module:
        return self.clap.audio_encoder.base.htsat  # HTSAT_Swin_Transformer

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        ab = self.frontend
        return htsat_forward_features(ab, ab.reshape_wav2img(x))

    def _load_tokenizer(self):
        if self.stub_tokenizer:
            from lmaczs_cli.models.stub_tokenizer import stub_gpt2_tokenizer

            return stub_gpt2_tokenizer()
        return load_gpt2_tokenizer(resolve_gpt2_dir(self._tokenizer_dir))

    def randomisable_blocks(
        self, granularity: Literal["stage", "block"] = "stage"
    ) -> list[tuple[str, nn.Module]]:
        """Input side first: patch embedding, Swin stages (or blocks), norm, projection."""
        out = htsat_blocks(self.frontend, "audio_encoder.base.htsat", granularity)
        return out + [("audio_encoder.projection", self.clap.audio_encoder.projection)]

    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """HTSAT's final ``norm``, tokens -> [B, C, 2, 32] (freq x time)."""
        ab = self.frontend
        last, ratio = ab.layers[-1].input_resolution, ab.freq_ratio
        return ab.norm, lambda tokens: tokens_to_grid(tokens, last, ratio)


# -- building -------------------------------------------------------------------------

_CLASSES: dict[str, type[MsClap]] = {"2022": MsClap2022, "2023": MsClap2023}


def build_clap(version: str, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """The upstream ``CLAP`` module of ``version`` with seeded random weights (CPU, eval).

    Mirrors ``CLAPWrapper.load_clap``'s constructor call; the text model is built
    from its config (no download); the global RNG state is left as it was.
    """
    up = load_upstream()
    cfg = up.config(version)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*meshgrid.*")
        torch.manual_seed(seed)
        clap = up.clap.CLAP(
            audioenc_name=cfg["audioenc_name"], sample_rate=cfg["sampling_rate"],
            window_size=cfg["window_size"], hop_size=cfg["hop_size"], mel_bins=cfg["mel_bins"],
            fmin=cfg["fmin"], fmax=cfg["fmax"], classes_num=cfg["num_classes"],
            out_emb=cfg["out_emb"], text_model=cfg["text_model"],
            transformer_embed_dim=cfg["transformer_embed_dim"], d_proj=cfg["d_proj"],
        )
    return clap.eval(), cfg


#: random mode: typical log-mel statistics (dB) of real clips at both front ends
#: (measured on ESC-50 clips: mean -38, std 30)
TYPICAL_LOGMEL_DB = (-40.0, 30.0)


def _typical_bn0(model: MsClap) -> None:
    """Random mode: give ``bn0`` typical log-mel statistics instead of PyTorch's (0, 1),
    so that untrained embeddings depend on the input (as laion.py does)."""
    mean, std = TYPICAL_LOGMEL_DB
    bn = model.frontend.bn0
    with torch.no_grad():
        bn.running_mean.fill_(mean)
        bn.running_var.fill_(std**2)


def _calibration_waves(model: MsClap, seed: int) -> torch.Tensor:
    """Four seeded synthetic clips (noise, tone, chirp, bursts) of one window each."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(model.window_samples) / model.sample_rate
    noise = torch.randn(4, t.shape[0], generator=g)
    return torch.stack([
        0.1 * noise[0],
        0.3 * torch.sin(2 * torch.pi * 440 * t),
        0.3 * torch.sin(2 * torch.pi * (200 + 1500 * t) * t),
        0.2 * noise[3] * (torch.sin(2 * torch.pi * 1.3 * t) > 0.5),
    ])


def _calibrate_batchnorms(model: MsClap, seed: int) -> None:
    """Random mode, CNN14: set every conv block's BatchNorm statistics from one seeded
    synthetic batch. With PyTorch's default (0, 1) the signal shrinks through twelve
    conv layers until fc1's bias alone decides the embedding (cosine distances ~1e-7
    between unrelated clips); calibrated, untrained embeddings depend on the input."""
    bns = [m for m in model.frontend.modules()
           if isinstance(m, nn.BatchNorm2d) and m is not model.frontend.bn0]
    mag = model.spectrogram(_calibration_waves(model, seed))[0]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch gives its own statistics
        bn.train()
    try:
        with torch.no_grad():
            model.encode(mag)
    finally:
        for bn in bns:
            bn.momentum = 0.1
            bn.eval()


def build_msclap(
    version: str,
    ckpt: str | os.PathLike[str] | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> MsClap:
    """Resolve the checkpoint (before any heavy work), build, load strictly, move to ``device``."""
    name = MODEL_NAMES[version]
    path = resolve_checkpoint(ckpt, version)
    stub = False
    if tokenizer_dir is not None and version == "2023":
        resolve_gpt2_dir(tokenizer_dir)  # fail early on an explicit bad folder
    elif version == "2023" and path is None:  # random weights: a missing GPT-2 tokenizer is no error
        try:
            resolve_gpt2_dir(None)
        except UsageError:
            stub = True
    sd = read_msclap_checkpoint(path, version) if path is not None else None
    clap, cfg = build_clap(version, seed)
    model = _CLASSES[version](clap, cfg, path.name if path else "random", tokenizer_dir)
    model.checkpoint_path = str(path) if path is not None else None
    model.stub_tokenizer = stub
    if sd is None:
        warnings.warn(
            f"{name}: using RANDOM weights (seed {seed}) - embeddings and explanations are "
            "meaningless; pass --clap-ckpt FILE for a trained model",
            RandomWeightsWarning,
            stacklevel=3,
        )
        _typical_bn0(model)
        if version == "2022":
            _calibrate_batchnorms(model, seed)
    else:
        load_strict(clap, sd, str(path), name)
    return model.to(_device(device)).eval()


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_ms_clap_2022(
    ckpt: str | None = None,
    tokenizer_dir: Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **_: Any,
) -> MsClap:
    """``ms-clap-2022``: default checkpoint CLAP_weights_2022.pth."""
    return build_msclap("2022", ckpt, tokenizer_dir, device, seed)


def build_ms_clap_2023(
    ckpt: str | None = None,
    tokenizer_dir: Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **_: Any,
) -> MsClap:
    """``ms-clap-2023``: default checkpoint CLAP_weights_2023.pth."""
    return build_msclap("2023", ckpt, tokenizer_dir, device, seed)
