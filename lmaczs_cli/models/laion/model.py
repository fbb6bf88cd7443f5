"""LAION-CLAP (HTSAT audio + RoBERTa text, non-fusion) as a :class:`ZeroShotModel`.

The weights live in the upstream ``CLAP`` module (``laion_clap.clap_module.model``,
loaded without its import-time downloads, see :mod:`lmaczs_cli.models.laion.upstream`); this class
re-expresses only the audio *front end* so that it starts from a linear
magnitude spectrogram and stays differentiable:

    wave --fit_window--> 10 s window --torch.stft--> |X| --input_transform--> log-mel
         --encode--> bn0 -> reshape_wav2img -> Swin stages -> norm -> pool
         -> audio_projection -> L2 normalise

Everything after ``|X|`` calls the upstream modules themselves (``logmel_extractor``,
``bn0``, ``reshape_wav2img``, ``patch_embed``, the Swin blocks, ``norm``,
``audio_projection``) in the order ``HTSAT_Swin_Transformer.forward`` and
``CLAP.get_audio_embedding`` use, so an unmasked clip gives the package's own
embedding (tests/test_laion_parity.py measures it).

Time-frequency layout. HTSAT stretches the 1001 frames of a 10 s window to 1024
(bicubic) and folds them into a 256x256 "image": time chunk ``k`` (frames
``256k .. 256k+255``) occupies rows ``64k .. 64k+63`` (its 64 mel bins), columns
are the frame within the chunk. A Swin stage with an ``R x R`` token grid thus
holds ``R/4`` frequency rows per chunk; :func:`tokens_to_grid` undoes the fold to
``[B, C, R/4 (freq, low->high), 4R (time, start->end)]`` - the same regrouping
HTSAT applies before its own pooling. Hidden maps and the GradCAM target use it,
so each covers the whole window on a proper time x frequency grid.
"""

from __future__ import annotations

import copy
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
from lmaczs_cli.models.laion.checkpoint import (
    checkpoint_amodel,
    laion_state_dict,
    model_for,
    read_checkpoint,
    resolve_checkpoint,
)
from lmaczs_cli.models.laion.tokenizer import (  # noqa: F401  (re-exported for callers of this module)
    TOKENIZER_FILES,
    load_tokenizer,
    resolve_tokenizer_dir,
)
from lmaczs_cli.models.laion.upstream import load_upstream
from lmaczs_cli.signal import STFTConfig

MAX_TEXT_TOKENS = 77


# -- HTSAT token grid <-> time x frequency ----------------------------------------------


def tokens_to_grid(x: torch.Tensor, resolution: tuple[int, int], freq_ratio: int) -> torch.Tensor:
    """Swin tokens ``[B, H*W, C]`` -> ``[B, C, H/freq_ratio, freq_ratio*W]`` (freq x time)."""
    h, w = resolution
    b, n, c = x.shape
    if n != h * w or h % freq_ratio:
        raise ValueError(f"{n} tokens do not form a {h}x{w} grid foldable by {freq_ratio}")
    x = x.reshape(b, freq_ratio, h // freq_ratio, w, c)  # row = chunk * (h/ratio) + freq
    x = x.permute(0, 4, 2, 1, 3)  # B, C, freq, chunk, time-in-chunk
    return x.reshape(b, c, h // freq_ratio, freq_ratio * w)


def htsat_forward_features(
    ab: nn.Module, x: torch.Tensor, longer_idx: torch.Tensor | list[int] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``HTSAT_Swin_Transformer.forward_features`` of ``ab`` up to ``latent_output``, keeping
    each Swin stage's map as [B, C, freq, time] (:func:`tokens_to_grid`). ``longer_idx``:
    for a fusion model, the batch rows whose 4 input channels are fused (``[]``: none)."""
    frames = x.shape[2]
    x = ab.patch_embed(x) if longer_idx is None else ab.patch_embed(x, longer_idx=longer_idx)
    if ab.ape:
        x = x + ab.absolute_pos_embed
    x = ab.pos_drop(x)
    hidden: list[torch.Tensor] = []
    for layer in ab.layers:
        for blk in layer.blocks:
            x, _ = blk(x)
        hidden.append(tokens_to_grid(x, layer.input_resolution, ab.freq_ratio))
        if layer.downsample is not None:
            x = layer.downsample(x)
    x = ab.norm(x)
    b, _, c = x.shape
    sf = frames // (2 ** (len(ab.depths) - 1)) // ab.patch_stride[0]
    st = frames // (2 ** (len(ab.depths) - 1)) // ab.patch_stride[1]
    x = x.permute(0, 2, 1).contiguous().reshape(b, c, sf, st)
    c_freq_bin = sf // ab.freq_ratio
    x = x.reshape(b, c, sf // c_freq_bin, c_freq_bin, st)
    x = x.permute(0, 1, 3, 2, 4).contiguous().reshape(b, c, c_freq_bin, -1)
    latent = torch.flatten(ab.avgpool(torch.flatten(x, 2)), 1)
    return latent, hidden


def htsat_blocks(
    ab: nn.Module, prefix: str, granularity: Literal["stage", "block"] = "stage"
) -> list[tuple[str, nn.Module]]:
    """HTSAT's randomisable parts, input side first: patch embedding, the Swin stages (or
    their blocks and patch-merging layers), the final norm; names start with ``prefix``."""
    out: list[tuple[str, nn.Module]] = [(f"{prefix}.patch_embed", ab.patch_embed)]
    for i, layer in enumerate(ab.layers):
        if granularity == "stage":
            out.append((f"{prefix}.layers.{i}", layer))
            continue
        for j, blk in enumerate(layer.blocks):
            out.append((f"{prefix}.layers.{i}.blocks.{j}", blk))
        if layer.downsample is not None:
            out.append((f"{prefix}.layers.{i}.downsample", layer.downsample))
    return out + [(f"{prefix}.norm", ab.norm)]


# -- the model ------------------------------------------------------------------------


class LaionClap(ZeroShotModel):
    """A LAION-CLAP checkpoint seen through its linear magnitude spectrogram."""

    sample_rate = 48000
    window_seconds = 10.0
    stft_config = STFTConfig(n_fft=1024, hop_length=480, win_length=1024)
    n_mels = 64
    #: int16 round trip of the waveform, as ``get_audio_embedding_from_data`` does
    quantize: bool = True

    def __init__(
        self,
        clap: nn.Module,
        model_cfg: dict[str, Any],
        name: str,
        checkpoint: str,
        tokenizer_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.clap = clap
        self.model_cfg = model_cfg
        self.name = name
        #: file name of the loaded checkpoint, or "random"
        self.checkpoint = checkpoint
        self._tokenizer_dir = tokenizer_dir
        self._tokenizer: Any = None
        ab = clap.audio_branch
        a = model_cfg["audio_cfg"]
        ours = (a["sample_rate"], a["window_size"], a["hop_size"], a["mel_bins"], a["clip_samples"])
        if ours != (48000, 1024, 480, 64, 480000) or ab.freq_ratio * a["mel_bins"] != ab.spec_size:
            raise ValueError(f"unsupported LAION audio config {a}")

    # -- signal side ------------------------------------------------------------------
    def fit_window(self, wave: torch.Tensor, offset: int = 0) -> Window:
        """The package's non-fusion policy, made deterministic.

        - int16 round trip (clip to [-1, 1], ``int16(x * 32767) / 32767``), as
          ``CLAP_Module.get_audio_embedding_from_data`` does for array input;
        - shorter than 10 s: ``repeatpad`` - the clip repeated ``floor(N_win / N)``
          times, then zeros; ``valid`` counts only the first copy;
        - longer: the package's ``rand_trunc`` picks a random 10 s crop; we take the
          one starting at ``offset`` samples (default 0, the start).
        """
        fitted = fill_window(wave, self.window_samples, offset, "repeatpad")
        return Window(self._quantized(fitted.wave), fitted.valid)  # zeros stay zeros

    def _quantized(self, wave: torch.Tensor) -> torch.Tensor:
        if not self.quantize:
            return wave
        q = (wave.clamp(-1.0, 1.0) * 32767.0).to(torch.int16)  # truncates, like numpy astype
        return (q.to(torch.float64) / 32767.0).to(wave.dtype)

    # -- model side -------------------------------------------------------------------
    @property
    def _audio(self) -> nn.Module:
        return self.clap.audio_branch

    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``|X|`` [B, 513, T] -> log-mel [B, 64, T] via the package's ``logmel_extractor``."""
        return torchlibrosa_logmel(self._audio.logmel_extractor, magnitude)

    def encode(self, magnitude: torch.Tensor) -> Encoded:
        return self.encode_features(self.input_transform(magnitude))

    def encode_features(self, logmel: torch.Tensor) -> Encoded:
        """Embedding and Swin stage maps from log-mel features [B, 64, T] (T <= 1024)."""
        ab = self._audio
        x = logmel.transpose(1, 2).unsqueeze(1)  # B, 1, T, M
        x = ab.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = ab.reshape_wav2img(x)  # B, 1, 256, 256
        latent, hidden = self._forward_features(x)
        emb = self.clap.audio_projection(latent)
        return Encoded(F.normalize(emb, dim=-1), hidden)

    def _forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return htsat_forward_features(self._audio, x)

    # -- text side --------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The roberta-base tokenizer, located and loaded on first use."""
        if self._tokenizer is None and self.stub_tokenizer:
            from lmaczs_cli.models.stub_tokenizer import stub_roberta_tokenizer

            self._tokenizer = stub_roberta_tokenizer()
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(resolve_tokenizer_dir(self._tokenizer_dir))
        return self._tokenizer

    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """As laion's ``hook.py``: pad to 77 tokens, truncate longer prompts."""
        enc = self.tokenizer(
            list(prompts),
            padding="max_length",
            truncation=True,
            max_length=MAX_TEXT_TOKENS,
            return_tensors="pt",
        )
        return {k: enc[k] for k in ("input_ids", "attention_mask")}

    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """``CLAP.get_text_embedding``: RoBERTa pooler -> text_projection -> normalise."""
        return self.clap.get_text_embedding(self.tokenize(prompts))

    # -- model facts ------------------------------------------------------------------
    @property
    def logit_scale(self) -> float:
        return float(self.clap.logit_scale_a.detach().exp())

    def mel_filterbank(self) -> torch.Tensor:
        return self._audio.logmel_extractor.melW.detach().T  # [64, 513]

    def randomisable_blocks(
        self, granularity: Literal["stage", "block"] = "stage"
    ) -> list[tuple[str, nn.Module]]:
        """Input side first: patch embedding, the Swin stages (or their blocks and
        patch-merging layers), the final norm, the audio projection."""
        out = htsat_blocks(self._audio, "audio_branch", granularity)
        return out + [("audio_projection", self.clap.audio_projection)]

    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """HTSAT's final ``norm`` (last Swin stage, normalised), tokens -> [B, C, 2, 32]."""
        ab = self._audio
        last = ab.layers[-1].input_resolution
        ratio = ab.freq_ratio

        def reshape(tokens: torch.Tensor) -> torch.Tensor:
            return tokens_to_grid(tokens, last, ratio)

        return ab.norm, reshape


# -- building -------------------------------------------------------------------------


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_clap(amodel: str, seed: int = 0, fusion: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """The upstream ``CLAP`` module for ``amodel`` with seeded random weights (CPU).

    Mirrors ``clap_module.factory.create_model`` for ``tmodel='roberta'``, fp32, non-fusion
    or (``fusion``) ``aff_2d`` as ``CLAP_Module(enable_fusion=True)``; the global RNG state is
    left as it was.
    """
    up = load_upstream()
    cfg = up.model_config(amodel)
    cfg["text_cfg"]["model_type"] = "roberta"
    cfg["enable_fusion"] = fusion
    cfg["fusion_type"] = "aff_2d" if fusion else "None"
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*meshgrid.*")
        torch.manual_seed(seed)
        clap = up.model.CLAP(**copy.deepcopy(cfg))
    return clap.eval(), cfg


def _typical_bn0(clap: nn.Module) -> None:
    """Random mode: give ``bn0`` typical log-mel statistics (mean -40 dB, std 30 dB).

    With PyTorch's default (0, 1) the untrained encoder sees raw dB values and its
    embeddings barely depend on the input (cosine distances ~1e-3 between unrelated
    clips); normalised input makes random-weight demos and tests meaningful.
    """
    bn = clap.audio_branch.bn0
    with torch.no_grad():
        bn.running_mean.fill_(-40.0)
        bn.running_var.fill_(30.0**2)


def read_laion_checkpoint(path: Path, amodel: str) -> dict[str, Any]:
    """The checkpoint's ``CLAP`` state dict, checked to be a non-fusion ``amodel`` one."""
    sd = laion_state_dict(read_checkpoint(path), str(path))
    found = checkpoint_amodel(sd, str(path))
    if found != amodel:
        raise UsageError(
            f"{path} holds an {found} audio encoder, not {amodel}: use --clap {model_for(found)}"
        )
    return sd


def _load_weights(clap: nn.Module, sd: dict[str, Any], source: str, amodel: str) -> None:
    persistent = set(clap.state_dict())
    for name, _ in clap.named_buffers():  # non-persistent buffers are never loaded
        if name not in persistent:
            sd.pop(name, None)
    try:
        clap.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:300]
        raise UsageError(f"{source} does not fit {amodel}: {detail}") from None


def build_laion(
    amodel: str,
    name: str,
    ckpt: str | os.PathLike[str] | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LaionClap:
    """Resolve the checkpoint (before any heavy work), build, load, move to ``device``."""
    path = resolve_checkpoint(ckpt, amodel)
    stub = tokenizer_stub(tokenizer_dir, path)
    sd = read_laion_checkpoint(path, amodel) if path is not None else None
    clap, cfg = build_clap(amodel, seed)
    load_or_randomise(clap, sd, path, amodel, name, seed, stub)
    return finish_model(LaionClap(clap, cfg, name, path.name if path else "random", tokenizer_dir), path,
                        stub, device)


def tokenizer_stub(tokenizer_dir: str | os.PathLike[str] | None, path: Path | None) -> bool:
    """Whether the model runs with the stand-in tokenizer: only random weights may, when no
    tokenizer files are found; an explicit bad ``tokenizer_dir`` fails early."""
    if tokenizer_dir is not None:
        resolve_tokenizer_dir(tokenizer_dir)
        return False
    if path is None:  # random weights: any tokenizer will do, so a missing one is no error
        try:
            resolve_tokenizer_dir(None)
        except UsageError:
            return True
    return False


def load_or_randomise(clap, sd: dict | None, path: Path | None, amodel: str, name: str, seed: int,
                      stub: bool) -> None:
    """Load ``sd`` into ``clap``, or keep its seeded random weights and say so (a warning)."""
    if path is None or sd is None:
        warnings.warn(
            f"{name}: using RANDOM weights (seed {seed}){' and a stub text tokenizer' if stub else ''}"
            " - embeddings and explanations are meaningless; pass --clap-ckpt FILE for a trained model",
            RandomWeightsWarning,
            stacklevel=4,
        )
        _typical_bn0(clap)
    else:
        _load_weights(clap, sd, str(path), amodel)


def finish_model(model, path: Path | None, stub: bool, device: str | torch.device):
    """Record where the weights came from and move the model to ``device`` in eval mode."""
    model.checkpoint_path = str(path) if path is not None else None
    model.stub_tokenizer = stub
    return model.to(_device(device)).eval()


def build_htsat_tiny(
    ckpt: str | None = None,
    tokenizer_dir: Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **_: Any,
) -> LaionClap:
    """``laion-htsat-tiny``: default checkpoint 630k-audioset-best.pt."""
    return build_laion("HTSAT-tiny", "laion-htsat-tiny", ckpt, tokenizer_dir, device, seed)


def build_htsat_base(
    ckpt: str | None = None,
    tokenizer_dir: Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **_: Any,
) -> LaionClap:
    """``laion-htsat-base``: default checkpoint music_speech_audioset_epoch_15_esc_89.98.pt."""
    return build_laion("HTSAT-base", "laion-htsat-base", ckpt, tokenizer_dir, device, seed)
