"""STFT frames, stitched masks and resynthesis computed a block of frames at a time.

Each piece gives what the whole-clip computation gives (:func:`lmaczs_cli.signal.stft`
with ``center=True``, :func:`lmaczs_cli.windows.stitch_masks`, :func:`torch.istft`),
with memory bounded by the block instead of the clip:

- :func:`frames_stft`: frames ``t0:t1`` of the centred STFT from the samples around them
  (reflection only at the clip's true ends);
- :class:`MaskStitcher`: per-window masks blended with the same taper, frames handed
  out once no later window overlaps them;
- :class:`OverlapAdd`: inverse STFT by overlap-add with torch.istft's squared-window
  envelope normalisation, samples handed out once no later frame overlaps them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lmaczs_cli.signal import STFTConfig
from lmaczs_cli.streaming.source import SampleBuffer
from lmaczs_cli.windows import _taper


def _window(cfg: STFTConfig, device: torch.device) -> torch.Tensor:
    """The analysis window zero-padded to ``n_fft`` (centred), as torch.stft/istft pad it."""
    w = torch.hann_window(cfg.win_length, periodic=True, device=device)
    left = (cfg.n_fft - cfg.win_length) // 2
    return F.pad(w, (left, cfg.n_fft - cfg.win_length - left))


def frames_stft(buf: SampleBuffer, cfg: STFTConfig, t0: int, t1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(magnitude, phase) [F, t1 - t0] of frames ``t0:t1`` of the centred STFT of the buffer's signal."""
    pad, hop = cfg.n_fft // 2, cfg.hop_length
    seg = buf.span(t0 * hop - pad, (t1 - 1) * hop - pad + cfg.n_fft, reflect=True)
    spec = torch.stft(seg, n_fft=cfg.n_fft, hop_length=hop, win_length=cfg.win_length,
                      window=torch.hann_window(cfg.win_length, periodic=True, device=seg.device),
                      center=False, return_complex=True)
    return spec.abs(), spec.angle()


class MaskStitcher:
    """``stitch_masks`` one window at a time: :meth:`add` returns the frames now final."""

    def __init__(self, starts: list[int], n_samples: int, hop: int) -> None:
        self.f0 = [s // hop for s in starts]
        self.frames = n_samples // hop + 1
        self.done = 0  # frames handed out
        self.acc: torch.Tensor | None = None  # [F, open frames] from ``done``
        self.wsum: torch.Tensor | None = None
        self.taper: torch.Tensor | None = None

    def add(self, i: int, mask: torch.Tensor) -> torch.Tensor:
        """Blend window ``i``'s mask [F, Tw] (windows in order); the final frames, clamped to [0, 1]."""
        if len(self.f0) == 1:  # one window: cut to the clip's frames, no blending
            self.done = self.frames
            return mask[:, : self.frames].clamp(0, 1)
        f, tw = mask.shape
        if self.acc is None:
            self.acc, self.wsum = mask.new_zeros(f, 0), mask.new_zeros(0)
            self.taper = _taper(tw, mask.device)
        f0 = self.f0[i]
        n_fr = min(tw, self.frames - f0)
        grow = f0 + n_fr - self.done - self.acc.shape[1]
        if grow > 0:
            self.acc = torch.cat([self.acc, mask.new_zeros(f, grow)], 1)
            self.wsum = torch.cat([self.wsum, mask.new_zeros(grow)])
        a = f0 - self.done
        self.acc[:, a : a + n_fr] += mask[:, :n_fr] * self.taper[:n_fr]
        self.wsum[a : a + n_fr] += self.taper[:n_fr]
        upto = self.f0[i + 1] if i + 1 < len(self.f0) else self.frames
        k = upto - self.done
        out = self.acc[:, :k] / self.wsum[:k].clamp_min(1e-8)
        self.acc, self.wsum, self.done = self.acc[:, k:], self.wsum[k:], upto
        return out.clamp(0, 1)


class OverlapAdd:
    """``torch.istft(..., center=True, length=length)`` fed a block of frames at a time."""

    def __init__(self, cfg: STFTConfig, length: int, device: torch.device | str = "cpu") -> None:
        self.cfg, self.length = cfg, int(length)
        self.window = _window(cfg, torch.device(device))
        self.pad = cfg.n_fft // 2
        self.frames = 0  # frames added
        self.emitted = 0  # output samples handed out
        self.acc = torch.zeros(0, device=device)  # overlap-added samples from padded index ``lo``
        self.env = torch.zeros(0, device=device)
        self.lo = 0

    def push(self, spec: torch.Tensor) -> torch.Tensor:
        """Add the next frames (complex [F, n]); return the output samples now final."""
        n, hop, nfft = int(spec.shape[1]), self.cfg.hop_length, self.cfg.n_fft
        if n == 0:
            return self.acc[:0]
        frames = torch.fft.irfft(spec.T, n=nfft) * self.window  # [n, n_fft]
        span = nfft + hop * (n - 1)
        y = _fold(frames, span, hop)
        e = _fold(self.window.pow(2).expand(n, nfft), span, hop)
        a = self.frames * hop - self.lo  # where these frames start in acc
        grow = a + span - int(self.acc.shape[0])
        if grow > 0:
            self.acc = torch.cat([self.acc, self.acc.new_zeros(grow)])
            self.env = torch.cat([self.env, self.env.new_zeros(grow)])
        self.acc[a : a + span] += y
        self.env[a : a + span] += e
        self.frames += n
        return self._emit(self.frames * hop)  # padded samples before the next frame's start are final

    def finish(self) -> torch.Tensor:
        """The remaining output, zero-padded to ``length`` as torch.istft pads."""
        out = self._emit(self.lo + int(self.acc.shape[0]))
        short = self.length - self.emitted
        return torch.cat([out, out.new_zeros(short)]) if short > 0 else out

    def _emit(self, final: int) -> torch.Tensor:
        stop = min(final, self.pad + self.length)  # padded index; output starts at ``pad``
        first = max(self.lo, self.pad + self.emitted)
        if stop <= first:
            return self.acc[:0]
        out = self.acc[first - self.lo : stop - self.lo] / self.env[first - self.lo : stop - self.lo]
        self.emitted += stop - first
        self.acc, self.env = self.acc[stop - self.lo :], self.env[stop - self.lo :]
        self.lo = stop
        return out


def _fold(frames: torch.Tensor, span: int, hop: int) -> torch.Tensor:
    """Overlap-add frames [n, L] placed ``hop`` apart into a signal of ``span`` samples."""
    n, length = frames.shape
    out = F.fold(frames.T[None], output_size=(1, span), kernel_size=(1, length), stride=(1, hop))
    return out.reshape(span)
