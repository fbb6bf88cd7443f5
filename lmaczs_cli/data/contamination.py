"""Out-of-domain inputs (docs/method.md §6): clips mixed with another clip, white noise or speech.

All functions are pure torch on the last dimension (so [N] or [B, N]) and
never return NaN: an all-zero input contributes nothing instead of 0/0.

- ``mix_with_clip(s, n)``: ``0.8 * s/||s|| + 0.2 * n/||n||``, peak-normalised;
- ``add_white_noise(s, g)``: ``s/||s|| + 0.5 * w/||w||``, ``w ~ N(0, 1)`` from ``g``, peak-normalised;
- ``mix_with_speech(s, speech)``: the mixture with a speech clip.

The contaminant is tiled (if shorter) or cropped to ``s``'s length. Conditions
for ``--condition`` parse with ``parse_condition``; ``pick_partner`` /
``pick_file`` / ``noise_generator`` make every choice a function of ``(seed, index)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lmaczs_cli.errors import UsageError

_EPS = 1e-12
CONDITIONS = ("clean", "esc50-mix", "white-noise", "speech")
_USAGE = "expected clean, esc50-mix, white-noise or speech:DIR"


# -- signal functions -----------------------------------------------------------
def unit_norm(x: torch.Tensor) -> torch.Tensor:
    """``x / ||x||`` over the last dimension (zero where ``x`` is all zero)."""
    norm = x.norm(dim=-1, keepdim=True)
    return torch.where(norm > _EPS, x / norm.clamp_min(_EPS), torch.zeros_like(x))


def peak_normalise(x: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Scale the last dimension so its largest ``|sample|`` is ``peak`` (all-zero rows stay zero)."""
    m = x.abs().amax(dim=-1, keepdim=True)
    return torch.where(m > _EPS, x * (peak / m.clamp_min(_EPS)), torch.zeros_like(x))


def match_length(n: torch.Tensor, length: int) -> torch.Tensor:
    """Tile ``n`` along its last dimension (if shorter) and crop it to ``length``."""
    have = n.shape[-1]
    if have == 0:
        return n.new_zeros((*n.shape[:-1], length))
    if have < length:
        n = n.repeat(*([1] * (n.dim() - 1)), -(-length // have))
    return n[..., :length]


def mix_with_clip(s: torch.Tensor, n: torch.Tensor, weight: float = 0.8) -> torch.Tensor:
    """``weight * s/||s|| + (1 - weight) * n/||n||``, peak-normalised (``n`` fitted to ``s``)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    x = s.float()
    other = match_length(n.to(device=x.device, dtype=x.dtype), x.shape[-1])
    mix = weight * unit_norm(x) + (1.0 - weight) * unit_norm(other)
    return peak_normalise(mix).to(s.dtype)


def mix_with_speech(s: torch.Tensor, speech: torch.Tensor, weight: float = 0.8) -> torch.Tensor:
    """The mixture of :func:`mix_with_clip` with a speech clip as the contaminant."""
    return mix_with_clip(s, speech, weight)


def add_white_noise(
    s: torch.Tensor, generator: torch.Generator | int | None = None, level: float = 0.5
) -> torch.Tensor:
    """``s/||s|| + level * w/||w||``, peak-normalised; ``w`` Gaussian from ``generator`` (or int seed)."""
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    device = generator.device if generator is not None else torch.device("cpu")
    w = torch.randn(s.shape, generator=generator, device=device, dtype=torch.float32)
    x = s.float()
    noisy = unit_norm(x) + level * unit_norm(w.to(x.device))
    return peak_normalise(noisy).to(s.dtype)


# -- seeded choices ---------------------------------------------------------------
def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([stream, seed % 2**63, int(index)]))


def pick_partner(index: int, labels: Sequence[str | None], seed: int = 0) -> int:
    """The clip mixed into clip ``index``: another clip, of another label when there is one."""
    n = len(labels)
    if n < 2:
        raise ValueError("a mixture needs at least two clips")
    others = [j for j in range(n) if j != index and labels[j] != labels[index]]
    if not others:
        others = [j for j in range(n) if j != index]
    return others[int(_rng(seed, index, 0).integers(len(others)))]


def pick_file(index: int, n_files: int, seed: int = 0) -> int:
    """A seeded choice among ``n_files`` contaminant files (e.g. speech) for clip ``index``."""
    if n_files < 1:
        raise ValueError("no files to choose from")
    return int(_rng(seed, index, 1).integers(n_files))


def noise_generator(index: int, seed: int = 0) -> torch.Generator:
    """A CPU generator for clip ``index``'s white noise, seeded by ``(seed, index)``."""
    state = int(np.random.SeedSequence([2, seed % 2**63, int(index)]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(state % 2**63)


# -- conditions -------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """An evaluation condition: ``kind`` in ``CONDITIONS``; ``speech_dir`` for ``speech``."""

    kind: str
    speech_dir: Path | None = None

    def __str__(self) -> str:
        return f"speech:{self.speech_dir}" if self.kind == "speech" else self.kind

    @property
    def is_clean(self) -> bool:
        return self.kind == "clean"

    def speech_files(self) -> list[Path]:
        """The speech folder's audio files, sorted (LJSpeech: ``ROOT/wavs/*.wav``)."""
        if self.speech_dir is None:
            return []
        from lmaczs_cli.audio import find_audio_files

        files = find_audio_files(self.speech_dir)
        if not files:
            raise UsageError(f"speech:{self.speech_dir}: no audio files in that folder")
        return files

    def apply(
        self,
        s: torch.Tensor,
        *,
        other: torch.Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> torch.Tensor:
        """Contaminate ``s``: ``other`` is the clip (esc50-mix) or speech; ``generator`` the noise's."""
        if self.kind == "clean":
            return s
        if self.kind == "white-noise":
            return add_white_noise(s, generator)
        if other is None:
            raise ValueError(f"condition {self}: needs the clip to mix in (other=...)")
        return mix_with_clip(s, other)


def parse_condition(text: str) -> Condition:
    """``"clean"``, ``"esc50-mix"``, ``"white-noise"`` or ``"speech:DIR"`` -> Condition."""
    raw = (text or "").strip()
    kind, sep, arg = raw.partition(":")
    kind = kind.strip().lower().replace("_", "-")
    if kind not in CONDITIONS:
        raise UsageError(f"--condition {raw!r}: unknown condition, {_USAGE}")
    if kind != "speech":
        if sep:
            raise UsageError(f"--condition {raw!r}: {kind} takes no argument ({_USAGE})")
        return Condition(kind)
    if not arg.strip():
        raise UsageError(f"--condition {raw!r}: speech needs a folder of speech audio: speech:DIR")
    folder = Path(arg.strip()).expanduser()
    if not folder.exists():
        raise UsageError(f"--condition {raw}: speech folder {folder} not found")
    if not folder.is_dir():
        raise UsageError(f"--condition {raw}: {folder} is not a folder")
    return Condition("speech", folder)
