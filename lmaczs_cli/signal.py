"""Pure STFT helpers shared by every model: magnitude/phase analysis and resynthesis."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class STFTConfig:
    """STFT settings of a model's front end (librosa/torchlibrosa conventions)."""

    n_fft: int
    hop_length: int
    win_length: int
    center: bool = True
    pad_mode: str = "reflect"

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        """Number of STFT frames for a signal of ``n_samples`` samples."""
        if self.center:
            return n_samples // self.hop_length + 1
        return (n_samples - self.n_fft) // self.hop_length + 1


def _window(cfg: STFTConfig, ref: torch.Tensor) -> torch.Tensor:
    return torch.hann_window(cfg.win_length, periodic=True, device=ref.device, dtype=ref.dtype)


def stft(wave: torch.Tensor, cfg: STFTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(magnitude, phase)`` of ``wave`` [B, N], each [B, F, T]."""
    spec = torch.stft(
        wave,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_window(cfg, wave),
        center=cfg.center,
        pad_mode=cfg.pad_mode,
        return_complex=True,
    )
    return spec.abs(), spec.angle()


def istft(
    magnitude: torch.Tensor, phase: torch.Tensor, cfg: STFTConfig, length: int
) -> torch.Tensor:
    """Resynthesise a waveform [B, length] from magnitude and phase [B, F, T]."""
    spec = torch.polar(magnitude, phase)
    return torch.istft(
        spec,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_window(cfg, magnitude),
        center=cfg.center,
        length=length,
    )
