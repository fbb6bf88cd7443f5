"""Read any audio file libsndfile reads -> mono float32 at a target rate; write WAV atomically."""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lmaczs_cli.errors import AudioError
from lmaczs_cli.inputs import AUDIO_EXTENSIONS, find_audio_files  # noqa: F401  (re-exported)
from lmaczs_cli.outputs import atomic_path

_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b".snd", b"caff")


@dataclass
class LoadedAudio:
    """A decoded clip: ``wave`` [N] float32 mono at ``sample_rate``."""

    path: str
    wave: torch.Tensor
    sample_rate: int
    orig_sample_rate: int
    orig_num_samples: int
    orig_channels: int


def audio_info(path: Path | str) -> sf._SoundFileInfo:
    """libsndfile's header info for ``path``, with one-line errors naming the file."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, _missing_reason(p))
    if p.is_dir():
        raise AudioError(p, "is a directory, not an audio file")
    size = p.stat().st_size
    if size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    try:
        with native_quiet(p):
            info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError) as e:
        with p.open("rb") as f:
            head = f.read(4)
        if head.startswith(_MAGIC) or head[:2] == b"\xff\xfb":
            raise AudioError(p, f"corrupt or truncated audio header ({_short(e)})") from None
        raise AudioError(p, "not an audio file (format not recognised)") from None
    if info.frames <= 0:
        raise AudioError(p, "no audio samples (0 frames)")
    if info.samplerate <= 0:
        raise AudioError(p, f"invalid sample rate {info.samplerate}")
    return info


_MPEG_SUFFIXES = (".mp3", ".mp2", ".mpga", ".mpeg")
_STDERR_LOCK = threading.RLock()


@contextlib.contextmanager
def native_quiet(path: Path | str) -> Iterator[None]:
    """Hold back what libsndfile's MP3 decoder (mpg123) prints straight to stderr while it reads
    ``path`` ("Note: Illegal Audio-MPEG-Header ...", resync notes): damaged data either decodes
    or fails with our own one-line error. Other files are read as they are."""
    if Path(path).suffix.lower() not in _MPEG_SUFFIXES:
        yield
        return
    with _STDERR_LOCK:  # fd 2 is the process's: writer threads take turns
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _missing_reason(p: Path) -> str:
    """Why ``p`` (which does not exist) cannot be read: no such file, a dangling link, a loop."""
    if not p.is_symlink():
        return "file not found"
    try:
        p.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 raises this for a loop
        return "symbolic link loop (the link leads back to itself)"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)"
    return f"broken symbolic link (its target {os.readlink(p)} does not exist)"


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return msg.split(": ", 1)[-1][:120]


def read_audio(
    path: Path | str, *, offset_s: float = 0.0, duration_s: float | None = None
) -> tuple[np.ndarray, int, sf._SoundFileInfo]:
    """Decode ``path`` (only the requested span) to mono float32 at its own rate."""
    info = audio_info(path)
    start = int(round(offset_s * info.samplerate))
    frames = -1 if duration_s is None else int(round(duration_s * info.samplerate))
    try:
        with native_quiet(path):
            data, sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(path, f"corrupt audio data ({_short(e)})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "no audio samples in the requested span")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    check_samples(path, mono)
    return np.ascontiguousarray(mono), sr, info


#: the largest sample magnitude read as audio: +80 dB over full scale. Beyond it a float file holds
#: mis-scaled or garbage data, and a model's power spectrum would overflow float32 into NaN
MAX_PEAK = 1e4


def check_samples(path: Path | str, mono: np.ndarray) -> None:
    """Raise ``AudioError`` for samples no model can take: NaN/Inf, or far beyond full scale."""
    if not np.isfinite(mono).all():
        raise AudioError(path, "contains NaN or Inf samples")
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak > MAX_PEAK:
        raise AudioError(path, f"samples reach {peak:.3g}, far beyond full scale (±1; at most "
                               f"{MAX_PEAK:g} is read): mis-scaled float data? Rescale the file")


_SHOULD_BE = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def header_warning(path: Path | str) -> str | None:
    """A note when ``path``'s header promises more audio than the file holds (a truncated copy),
    from libsndfile's header log; None otherwise (also for files it cannot read)."""
    return header_facts(str(path))[0]


@functools.lru_cache(maxsize=64)
def _header_facts(path: str, mtime_ns: int) -> tuple[str | None, int]:
    try:
        with native_quiet(path):
            info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None, 1
    m = _SHOULD_BE.search(info.extra_info or "")
    if not m or int(m.group(3)) >= int(m.group(2)) or int(m.group(3)) <= 0:
        return None, int(info.channels)
    promised = int(round(info.frames * int(m.group(2)) / int(m.group(3))))
    return (f"truncated file: its header promises {promised} frames ({promised / info.samplerate:.3g} s) "
            f"but it holds {info.frames} ({info.frames / info.samplerate:.3g} s); explained as it is",
            int(info.channels))


def header_facts(path: Path | str) -> tuple[str | None, int]:
    """(the truncation note of :func:`header_warning`, the channel count) from one header read,
    remembered per file version (every prompt of a clip asks)."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None, 1
    return _header_facts(str(path), mtime)


#: a peak over this is worth a warning (resampling a clip that touches full scale overshoots a little)
OVER_SCALE_PEAK = 2.0
#: a clip whose peak stays within two 16-bit steps (-84 dBFS) is digital silence
SILENCE_PEAK = 2.0 / 32768.0


def wave_warning(wave: torch.Tensor | np.ndarray, channels: int) -> str | None:
    """A note on samples that decode but mislead: digital silence (a stereo file whose channels
    cancel in the mono mix the model hears), or a peak over full scale."""
    arr = wave.detach().abs() if isinstance(wave, torch.Tensor) else torch.from_numpy(np.abs(wave))
    peak = float(arr.max()) if arr.numel() else 0.0
    if peak <= SILENCE_PEAK:
        if channels > 1:
            return (f"the mono mix the model hears is digital silence (peak {peak:.2g}): the file's "
                    f"{channels} channels cancel out (one is the other inverted?)")
        return f"the clip is digital silence (peak {peak:.2g})"
    if peak > OVER_SCALE_PEAK:
        return (f"samples exceed full scale (peak {peak:.3g}, over {OVER_SCALE_PEAK:g} × full scale): "
                "mis-scaled float data? The model hears it louder than any recording")
    return None


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample [..., N] from ``orig_sr`` to ``new_sr`` (torchaudio; batched, on wave's device).

    The windowed-sinc kernel is built once per (rates, device, dtype) and reused.
    """
    if orig_sr == new_sr:
        return wave
    return _resampler(int(orig_sr), int(new_sr), str(wave.device), wave.dtype)(wave)


@functools.lru_cache(maxsize=32)
def _resampler(orig_sr: int, new_sr: int, device: str, dtype: torch.dtype):
    import torchaudio.transforms as AT

    # the kernel is computed in float64 and then cast (torchaudio's advice); building it
    # in float32 with ``dtype=`` is ~5e-6 less accurate and differs from plain ``Resample``
    return AT.Resample(orig_sr, new_sr).to(device=device, dtype=dtype)


def load_audio(
    path: Path | str,
    sample_rate: int | None = None,
    *,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    device: torch.device | str = "cpu",
) -> LoadedAudio:
    """Read ``path`` as mono float32 at ``sample_rate`` (its own rate if None)."""
    mono, sr, info = read_audio(path, offset_s=offset_s, duration_s=duration_s)
    wave = torch.from_numpy(mono).to(device)
    target = sample_rate or sr
    wave = resample(wave, sr, target)
    return LoadedAudio(str(path), wave, target, sr, int(info.frames), int(info.channels))


def write_wav(
    path: Path | str, wave: torch.Tensor | np.ndarray, sample_rate: int, subtype: str = "FLOAT"
) -> Path:
    """Write a mono [N] (or [C, N]) waveform as WAV atomically; returns the path."""
    if int(sample_rate) <= 0:
        raise ValueError(f"{path}: sample rate must be positive, got {sample_rate}")
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().float().cpu().numpy()
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr.T
    # encoded in memory, then written in one go: the same bytes as libsndfile writing the file
    # itself, without the fsync its close does for every file (milliseconds per WAV)
    buf = io.BytesIO()
    try:
        sf.write(buf, arr, int(sample_rate), subtype=subtype, format="WAV")
    except (sf.LibsndfileError, RuntimeError) as e:  # libsndfile says only "System error."
        raise _write_error(Path(path), arr.nbytes, e) from None
    with atomic_path(path, suffix=".part.wav") as tmp:
        try:
            tmp.write_bytes(buf.getbuffer())
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from None
    return Path(path)


def _write_error(path: Path, needed: int, e: Exception) -> OSError:
    """An ``OSError`` naming ``path``: ENOSPC when the folder has less room than the data needs."""
    import errno
    import shutil

    try:
        full = shutil.disk_usage(path.parent).free < needed + 65536
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, "No space left on device", str(path))
    return OSError(errno.EIO, f"could not write the WAV ({_short(e)})", str(path))


#: WAV sample formats kept as they are; lossy or companded sources are written as 16-bit PCM
_KEEP_SUBTYPES = {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}
_PCM16_SOURCES = {"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "ALAW", "ULAW",
                  "PCM_S8", "GSM610", "IMA_ADPCM", "MS_ADPCM"}


def wav_subtype_for(source: Path | str | None) -> str:
    """The WAV sample format for audio derived from ``source``: its own when WAV can hold it
    (PCM_16 stays PCM_16), 16-bit PCM for lossy sources, float when unknown (arrays)."""
    if source is None or not Path(source).is_file():
        return "FLOAT"
    try:
        with native_quiet(source):
            sub = sf.info(str(source)).subtype
    except (sf.LibsndfileError, RuntimeError):
        return "FLOAT"
    if sub in _KEEP_SUBTYPES:
        return "DOUBLE" if sub == "DOUBLE" else sub
    return "PCM_16" if sub in _PCM16_SOURCES else "FLOAT"


def within_full_scale(wave: np.ndarray) -> np.ndarray:
    """``wave`` scaled down so its peak stays inside full scale (untouched when it already is)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    limit = 32767.0 / 32768.0
    return wave if peak <= limit else (wave * (limit / peak)).astype(wave.dtype)
