"""Audio I/O: every format decodes to mono float32 at the asked rate; bad inputs give clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lmaczs_cli.audio import find_audio_files, load_audio, read_audio, write_wav
from lmaczs_cli.errors import AudioError


def _tone(sr: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


FORMATS = [
    ("a.wav", "WAV", "PCM_16", 1e-4),
    ("a24.wav", "WAV", "PCM_24", 1e-6),
    ("a32.wav", "WAV", "PCM_32", 1e-6),
    ("au8.wav", "WAV", "PCM_U8", 1e-2),
    ("af.wav", "WAV", "FLOAT", 1e-7),
    ("ad.wav", "WAV", "DOUBLE", 1e-7),
    ("a.flac", "FLAC", "PCM_16", 1e-4),
    ("a.aiff", "AIFF", "PCM_16", 1e-4),
    ("a.ogg", "OGG", "VORBIS", None),
    ("a.mp3", "MP3", "MPEG_LAYER_III", None),
]


@pytest.mark.parametrize("name,fmt,subtype,tol", FORMATS)
def test_formats_decode_to_mono_float(tmp_path: Path, name, fmt, subtype, tol) -> None:
    sr = 16000
    x = _tone(sr)
    stereo = np.stack([x, 0.5 * x], axis=1)
    p = tmp_path / name
    sf.write(p, stereo, sr, format=fmt, subtype=subtype)
    a = load_audio(p)
    assert a.wave.dtype == torch.float32 and a.wave.ndim == 1
    assert a.sample_rate == sr and a.orig_channels == 2
    mono = 0.75 * x
    if tol is not None:  # lossless: sample-exact up to quantisation
        assert a.wave.shape[0] == len(x)
        assert np.max(np.abs(a.wave.numpy() - mono)) < max(tol, 2.0 ** -14)
    else:  # lossy codecs: same energy, same length within codec padding
        assert abs(a.wave.shape[0] - len(x)) < 2048
        rms = float(a.wave.pow(2).mean().sqrt())
        assert rms == pytest.approx(float(np.sqrt(np.mean(mono**2))), rel=0.15)


def test_resample_to_model_rate(tmp_path: Path) -> None:
    p = tmp_path / "t.wav"
    sf.write(p, _tone(44100, 1.0, 1000.0), 44100)
    a = load_audio(p, 16000)
    assert a.sample_rate == 16000 and a.orig_sample_rate == 44100
    assert a.wave.shape[0] == 16000
    spec = np.abs(np.fft.rfft(a.wave.numpy()))
    assert np.argmax(spec) == pytest.approx(1000, abs=2)  # 1 Hz bins over 1 s


def test_window_read_does_not_decode_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    sr = 8000
    x = np.arange(sr * 20, dtype=np.float32) / (sr * 20)
    sf.write(p, x, sr, subtype="FLOAT")
    mono, got_sr, info = read_audio(p, offset_s=10.0, duration_s=2.0)
    assert got_sr == sr and len(mono) == 2 * sr and info.frames == 20 * sr
    assert mono[0] == pytest.approx(x[10 * sr])


def _bad(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.wav"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "notaudio":
        p.write_text("hello, I am a text file pretending to be audio\n" * 10)
    elif kind == "header":
        good = tmp_path / "good.wav"
        sf.write(good, _tone(8000), 8000)
        data = bytearray(good.read_bytes())
        data[8:16] = b"XXXXXXXX"  # break the WAVE/fmt chunk ids
        p.write_bytes(bytes(data))
    elif kind == "zero":
        sf.write(p, np.zeros((0,), dtype=np.float32), 8000)
    elif kind == "nan":
        x = _tone(8000)
        x[100] = np.nan
        x[200] = np.inf
        sf.write(p, x, 8000, subtype="FLOAT")
    return p


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", "file not found"),
        ("empty", "empty file (0 bytes)"),
        ("notaudio", "not an audio file"),
        ("header", "corrupt or truncated audio header"),
        ("zero", "no audio samples"),
        ("nan", "contains NaN or Inf samples"),
    ],
)
def test_bad_inputs_have_one_line_errors(tmp_path: Path, kind: str, message: str) -> None:
    p = tmp_path / "missing.wav" if kind == "missing" else _bad(tmp_path, kind)
    with pytest.raises(AudioError) as e:
        load_audio(p, 16000)
    text = str(e.value)
    assert text.startswith(str(p)) and message in text
    assert "\n" not in text


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_write_wav_round_trip_and_atomic(tmp_path: Path) -> None:
    x = torch.from_numpy(_tone(22050, 0.3))
    out = write_wav(tmp_path / "sub" / "o.wav", x, 22050)
    y, sr = sf.read(out, dtype="float32")
    assert sr == 22050 and np.array_equal(y, x.numpy())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["o.wav"]


def test_write_wav_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_wav(tmp_path / "bad.wav", np.zeros(10), sample_rate=0)
    assert list(tmp_path.iterdir()) == []


def test_find_audio_files_recursive(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for n in ["a/x.wav", "a/b/y.FLAC", "a/b/z.txt", "w.mp3"]:
        (tmp_path / n).write_bytes(b"0")
    got = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert got == ["a/b/y.FLAC", "a/x.wav", "w.mp3"]


def test_real_esc50_clip(esc50_mini: Path) -> None:
    clip = sorted((esc50_mini / "audio").glob("*.wav"))[0]
    a = load_audio(clip, 48000)
    assert a.orig_sample_rate == 44100 and a.orig_num_samples == 5 * 44100
    assert a.wave.shape[0] == 5 * 48000 and torch.isfinite(a.wave).all()


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        out = write_wav(tmp_path / "p.wav", np.zeros(10, dtype=np.float32), 8000)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_reading_the_umask_never_changes_it(monkeypatch) -> None:
    """Writer threads create files while others finish theirs: setting the umask even for an
    instant would give a concurrent file the wrong mode, so it is only read (Linux)."""
    import os

    from lmaczs_cli import outputs

    old = os.umask(0o027)
    try:
        calls: list[int] = []
        real = os.umask
        monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
        assert outputs._umask() == 0o027
        if os.path.exists("/proc/self/status"):
            assert calls == []
        monkeypatch.setattr(os, "umask", real)
    finally:
        os.umask(old)
