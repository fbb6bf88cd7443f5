"""A long clip read from disk in blocks, as the very samples decoding it whole would give.

:class:`StreamResampler` resamples a signal that arrives in pieces with the same
windowed-sinc kernel as :func:`lmaczs_cli.audio.resample` (torchaudio): each output
block is computed from a slice of the input that holds its whole receptive field
(``width`` samples either side, torchaudio's zero padding only at the true ends),
so the output equals resampling the whole signal at once (bit for bit in our checks).
:func:`model_rate_blocks` decodes a file in blocks, mixes to mono as
:func:`lmaczs_cli.audio.read_audio` does, and resamples to the model's rate;
:class:`SampleBuffer` keeps the sliding span of those samples still needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lmaczs_cli.audio import _resampler, _short, audio_info, check_samples, native_quiet
from lmaczs_cli.errors import AudioError

#: frames of the file decoded per read (about 1.5 s at 44.1 kHz)
READ_FRAMES = 1 << 16


def resampled_length(n: int, orig_sr: int, new_sr: int) -> int:
    """Samples of an ``n``-sample signal resampled from ``orig_sr`` to ``new_sr`` (as torchaudio)."""
    if orig_sr == new_sr:
        return n
    g = math.gcd(orig_sr, new_sr)
    return math.ceil((new_sr // g) * n / (orig_sr // g))


class StreamResampler:
    """Resample [N] pushed in pieces; the concatenated output equals ``resample(whole)``."""

    def __init__(self, orig_sr: int, new_sr: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.same = orig_sr == new_sr
        g = math.gcd(orig_sr, new_sr)
        self.o, self.n = orig_sr // g, new_sr // g  # input / output samples per block
        if not self.same:
            self.module = _resampler(int(orig_sr), int(new_sr), str(torch.device(device)), dtype)
            self.width = int(self.module.width)
        self.lead = 0 if self.same else math.ceil(self.width / self.o)  # blocks kept before the next one
        self.buf = torch.zeros(0, device=device, dtype=dtype)
        self.buf_start = 0  # input index of buf[0]
        self.total = 0  # input samples pushed
        self.next_block = 0  # first output block not yet emitted

    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Add input samples; return the output samples that are now final."""
        if self.same:
            self.total += int(x.shape[-1])
            return x
        self.buf = torch.cat([self.buf, x.to(self.buf)])
        self.total += int(x.shape[-1])
        # block i reads inputs [i*o - width, (i+1)*o + width): final once those are all here
        return self._emit(max(self.next_block, (self.total - self.width) // self.o), final=False)

    def finish(self) -> torch.Tensor:
        """The remaining output (torchaudio's zero padding after the true end)."""
        if self.same:
            return self.buf[:0]
        blocks = math.ceil(resampled_length(self.total, self.o, self.n) / self.n)
        return self._emit(max(blocks, self.next_block), final=True)

    def _emit(self, stop: int, final: bool) -> torch.Tensor:
        first = self.next_block
        if stop <= first:
            return self.buf[:0]
        s = max(0, first - self.lead) * self.o  # the slice starts whole blocks before, or at 0
        e = self.total if final else min(self.total, stop * self.o + self.width)
        y = self.module(self.buf[s - self.buf_start : e - self.buf_start])
        skip = first - s // self.o
        out = y[skip * self.n : (stop - s // self.o) * self.n]
        self.next_block = stop
        keep = max(0, stop - self.lead) * self.o
        self.buf = self.buf[keep - self.buf_start :]
        self.buf_start = keep
        return out


@dataclass(frozen=True)
class ClipInfo:
    """A file's own rate and length, and its length once resampled to ``sample_rate``."""

    path: str
    orig_sample_rate: int
    orig_num_samples: int
    sample_rate: int
    num_samples: int


def clip_info(path: Path | str, sample_rate: int) -> ClipInfo:
    """Header-only facts about ``path`` (``AudioError`` for a file that cannot be used)."""
    info = audio_info(path)
    sr0, n0 = int(info.samplerate), int(info.frames)
    return ClipInfo(str(path), sr0, n0, int(sample_rate), resampled_length(n0, sr0, int(sample_rate)))


def model_rate_blocks(path: Path | str, sample_rate: int,
                      read_frames: int = READ_FRAMES) -> Iterator[torch.Tensor]:
    """The clip as mono float32 blocks at ``sample_rate``: together ``load_audio(path, sample_rate).wave``.

    Raises :class:`AudioError` (naming the file) for corrupt data, NaN/Inf samples,
    or fewer frames than the header announced.
    """
    info = clip_info(path, sample_rate)
    rs = StreamResampler(info.orig_sample_rate, int(sample_rate))
    got = 0
    try:
        with native_quiet(path), sf.SoundFile(str(path)) as f:
            while True:
                data = f.read(read_frames, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                got += data.shape[0]
                mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                check_samples(path, mono)
                out = rs.push(torch.from_numpy(np.ascontiguousarray(mono)))
                if out.numel():
                    yield out
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(path, f"corrupt audio data ({_short(e)})") from None
    if got != info.orig_num_samples:
        raise AudioError(path, f"truncated audio data ({got} of {info.orig_num_samples} frames)")
    tail = rs.finish()
    if tail.numel():
        yield tail


class SampleBuffer:
    """The span of a signal of known length still needed, filled from an iterator of blocks.

    ``span(a, b)`` returns samples ``a:b``; indices outside ``[0, length)`` are read
    by reflection (``reflect=True``, as a centred STFT pads) or as zeros.
    """

    def __init__(self, blocks: Iterator[torch.Tensor], length: int, device: torch.device | str = "cpu",
                 name: str = "<clip>") -> None:
        self.blocks = blocks
        self.name = name
        self.length = int(length)  # the signal's true length
        self.device = torch.device(device)
        self.data = torch.zeros(0, device=self.device)
        self.start = 0  # index of data[0]

    @property
    def end(self) -> int:
        return self.start + int(self.data.shape[0])

    def fill_to(self, stop: int) -> None:
        """Read blocks until samples up to ``stop`` (at most the length) are held."""
        stop = min(stop, self.length)
        parts = [self.data]
        have = self.end
        while have < stop:
            block = next(self.blocks, None)
            if block is None:
                raise AudioError(self.name, f"ended after {have} of {self.length} samples")
            parts.append(block.to(self.device))
            have += int(block.shape[0])
        if len(parts) > 1:
            self.data = torch.cat(parts)

    def span(self, a: int, b: int, reflect: bool = False) -> torch.Tensor:
        """Samples ``a:b`` (reflected or zero outside the signal); ``a`` must not be dropped yet."""
        if a >= 0 and b <= self.length:
            self._check(a)
            self.fill_to(b)
            return self.data[a - self.start : b - self.start]
        idx = torch.arange(a, b, device=self.device)
        if reflect:
            idx = idx.abs()
            idx = torch.where(idx >= self.length, 2 * (self.length - 1) - idx, idx)
        inside = (idx >= 0) & (idx < self.length)
        if not bool(inside.any()):
            return torch.zeros(b - a, device=self.device)
        self._check(int(idx[inside].min()))
        self.fill_to(int(idx[inside].max()) + 1)
        out = self.data[idx.clamp(self.start, self.end - 1) - self.start]
        return torch.where(inside, out, torch.zeros_like(out))

    def _check(self, a: int) -> None:
        if a < self.start:
            raise RuntimeError(f"sample {a} was already dropped (buffer starts at {self.start})")

    def drop_before(self, a: int) -> None:
        """Forget samples before ``a``."""
        k = min(max(0, a - self.start), int(self.data.shape[0]))
        if k:
            self.data = self.data[k:]
            self.start += k
