"""A tiny, offline ``ZeroShotModel`` and toy data for tests of decoders, losses and training.

``FakeModel``: 8 kHz, 1 s window, STFT 256/64 (F=129, T=126), 32 log-mel bins,
a 2-conv-block encoder with random frozen weights (its block outputs are
``hidden``), and a hashed bag-of-words text encoder. Registered as ``"fake"``
on import (``register()``), so ``create_model("fake")`` and ``--clap fake`` work.

Run the CLI with the fake model registered (also under torchrun)::

    python -m tests.fake_model train --clap fake --data toy ...
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.signal import STFTConfig

EMBED_DIM = 32


def _word_vector(word: str, dim: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(word.lower().encode()))
    return torch.randn(dim, generator=g)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular mel filters [n_mels, n_freqs] (HTK mel scale, 0 Hz .. Nyquist)."""

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = torch.linspace(0, sample_rate / 2, n_freqs)
    edges = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0)


class FakeModel(ZeroShotModel):
    """Random frozen CNN on log-mel; texts embedded as hashed bags of words."""

    name = "fake"
    sample_rate = 8000
    window_seconds = 1.0
    stft_config = STFTConfig(n_fft=256, hop_length=64, win_length=256)
    n_mels = 32

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1234 + seed)
        self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2))
        self.head = nn.Linear(32, EMBED_DIM)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(max(1, p[0].numel()))))
        self.register_buffer("fbank", mel_filterbank(self.n_freqs, self.n_mels, self.sample_rate))

    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        mel = torch.einsum("mf,bft->bmt", self.fbank, magnitude**2)
        return torch.log(mel + 1e-6)

    def encode(self, magnitude: torch.Tensor) -> Encoded:
        x = self.input_transform(magnitude)
        x = (x + 6.0) / 4.0  # rough standardisation of log-mel values
        h1 = self.block1(x[:, None])
        h2 = self.block2(h1)
        pooled = torch.cat([h2.mean((2, 3)), h2.amax((2, 3))], dim=1)
        return Encoded(F.normalize(self.head(pooled), dim=-1), [h1, h2])

    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        rows = []
        for p in prompts:
            words = p.split() or ["<empty>"]
            rows.append(torch.stack([_word_vector(w, EMBED_DIM) for w in words]).sum(0))
        return F.normalize(torch.stack(rows), dim=-1)

    @property
    def logit_scale(self) -> float:
        return 10.0

    def mel_filterbank(self) -> torch.Tensor:
        return self.fbank

    def randomisable_blocks(self) -> list[tuple[str, nn.Module]]:
        return [("block1", self.block1), ("block2", self.block2), ("head", self.head)]

    def gradcam_target(self):
        return self.block2, None


def build_fake(ckpt: str | None = None, tokenizer_dir=None, device: str = "cpu", seed: int = 0) -> FakeModel:
    """Factory with the keyword arguments ``pipeline.build_model`` passes."""
    return FakeModel(seed=0).to(device)


def register() -> None:
    """Make ``create_model("fake")`` / ``--clap fake`` available in this process."""
    from lmaczs_cli.models.registry import register_model

    register_model("fake", "tests.fake_model:build_fake", "tiny random model for tests")


register()


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread (tiny convs on shared cores are far faster so)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- toy data ------------------------------------------------------------------

#: caption -> (centre frequency Hz, amplitude); captions share words so texts correlate
TOY_EVENTS: dict[str, float] = {
    "low hum": 200.0,
    "mid tone beep": 900.0,
    "high whistle": 2500.0,
    "very high whistle": 3400.0,
}


def toy_wave(caption: str, n: int, sample_rate: int, seed: int) -> torch.Tensor:
    """A noisy tone burst for ``caption`` (deterministic in ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    f0 = TOY_EVENTS[caption]
    t = torch.arange(n) / sample_rate
    start = float(torch.rand(1, generator=g)) * 0.5
    env = ((t > start) & (t < start + 0.4)).float()
    tone = torch.sin(2 * math.pi * f0 * t + float(torch.rand(1, generator=g)) * 6.28)
    return 0.5 * env * tone + 0.01 * torch.randn(n, generator=g)


class ToyClips(torch.utils.data.Dataset):
    """In-memory records like ``ClipDataset``'s: ``wave``, ``valid``, ``text``, ``error``.

    ``accessed`` lists the indices read in this process (for DDP shard tests).
    """

    def __init__(self, n: int, seed: int = 0, model: ZeroShotModel | None = None) -> None:
        m = model or FakeModel
        self.n_samples = int(m.sample_rate * m.window_seconds)
        self.sample_rate = m.sample_rate
        self.captions = list(TOY_EVENTS)
        self.n = n
        self.seed = seed
        self.accessed: list[int] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        self.accessed.append(int(i))
        cap = self.captions[i % len(self.captions)]
        wave = toy_wave(cap, self.n_samples, self.sample_rate, self.seed * 100003 + i)
        return {"wave": wave, "valid": self.n_samples, "text": cap, "error": None, "index": i}


def collate_toy(records: list[dict]) -> dict:
    return {
        "wave": torch.stack([r["wave"] for r in records]),
        "valid": [r["valid"] for r in records],
        "text": [r["text"] for r in records],
        "error": [r["error"] for r in records],
        "index": [r["index"] for r in records],
    }


if __name__ == "__main__":
    from lmaczs_cli.cli.app import main

    main()
