"""Output files written a block at a time: WAV at the clip's own rate, ``mask.npy``, map columns.

Every file goes to the temp path of :func:`lmaczs_cli.outputs.atomic_path` (renamed by
the caller's context on success, removed on failure). Write failures become an
``OSError`` naming the final file (ENOSPC when the disk is short of room).
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lmaczs_cli.audio import _write_error
from lmaczs_cli.streaming.source import StreamResampler

#: time columns kept for the map PNG (each panel is about 400 pixels wide)
MAP_COLUMNS = 1000


def _os_error(final: Path, e: Exception, needed: int) -> OSError:
    if isinstance(e, OSError):
        return OSError(e.errno or errno.EIO, e.strerror or str(e), str(final))
    return _write_error(final, needed, e)


class WavSink:
    """Model-rate samples in, a mono WAV of exactly ``num_samples`` at ``sample_rate`` out, in the
    sample format ``subtype`` (samples beyond full scale are clipped: a stream cannot be rescaled)."""

    def __init__(self, tmp: Path, final: Path, model_rate: int, sample_rate: int, num_samples: int,
                 device: torch.device | str = "cpu", subtype: str = "FLOAT") -> None:
        self.final, self.n = final, int(num_samples)
        self.resampler = StreamResampler(model_rate, sample_rate, device)
        self.written = 0
        try:
            self.file = sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=1,
                                     subtype=subtype, format="WAV")
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise _os_error(final, e, 4 * self.n) from None

    def write(self, wave: torch.Tensor) -> None:
        """Add model-rate samples (what comes after those already written)."""
        self._put(self.resampler.push(wave))

    def finish(self) -> None:
        """Flush the resampler, zero-pad to the clip's length, close the file."""
        self._put(self.resampler.finish())
        if self.written < self.n:
            self._put(torch.zeros(self.n - self.written))
        self.close()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

    def _put(self, y: torch.Tensor) -> None:
        y = y[: self.n - self.written]
        if y.numel() == 0:
            return
        try:
            self.file.write(np.clip(y.detach().float().cpu().numpy(), -1.0, 32767.0 / 32768.0))
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise _os_error(self.final, e, 4 * (self.n - self.written)) from None
        self.written += int(y.numel())


class NpySink:
    """A float32 ``.npy`` of shape [F, T] written one block of frames at a time.

    The array is stored in Fortran order (frame after frame), so blocks are plain
    appends; ``np.load`` gives the same values as a C-ordered save.
    """

    def __init__(self, tmp: Path, final: Path, shape: tuple[int, int]) -> None:
        self.final, self.shape = final, shape
        self.frames = 0
        try:
            self.file = open(tmp, "wb")  # noqa: SIM115  (closed by finish/close)
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": True,
                      "shape": tuple(int(s) for s in shape)}
            np.lib.format.write_array_header_1_0(self.file, header)
        except OSError as e:
            raise _os_error(final, e, 4 * shape[0] * shape[1]) from None

    def write(self, block: torch.Tensor) -> None:
        """Add frames [F, n] (the next ones in time)."""
        data = block.detach().float().cpu().T.contiguous().numpy().astype("<f4", copy=False)
        try:
            self.file.write(data.tobytes())
        except OSError as e:
            raise _os_error(self.final, e, data.nbytes) from None
        self.frames += int(block.shape[1])

    def finish(self) -> None:
        if self.frames != self.shape[1]:
            raise RuntimeError(f"{self.final}: wrote {self.frames} of {self.shape[1]} frames")
        self.close()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()


class MapColumns:
    """Per-column summaries of [F, T] arrays arriving in frame blocks: max or mean over each column's frames.

    Column ``c`` holds frames ``t`` with ``t * columns // T == c``.
    """

    def __init__(self, n_freqs: int, n_frames: int, reduce: str, columns: int = MAP_COLUMNS,
                 device: torch.device | str = "cpu") -> None:
        self.n_frames, self.columns, self.reduce = int(n_frames), min(int(columns), int(n_frames)), reduce
        self.acc = torch.zeros(n_freqs, self.columns, device=device)
        self.count = torch.zeros(self.columns, device=device)
        self.t = 0

    def add(self, block: torch.Tensor) -> None:
        """Add frames [F, n] (the next ones in time)."""
        n = int(block.shape[1])
        t = torch.arange(self.t, self.t + n, device=block.device)
        col = t * self.columns // self.n_frames
        if self.reduce == "max":
            self.acc.scatter_reduce_(1, col.expand_as(block), block.float(), "amax", include_self=True)
        else:
            self.acc.index_add_(1, col, block.float())
        self.count.index_add_(0, col, torch.ones(n, device=block.device))
        self.t += n

    def result(self) -> np.ndarray:
        """The [F, columns] summary."""
        out = self.acc if self.reduce == "max" else self.acc / self.count.clamp_min(1)
        return out.cpu().numpy()
