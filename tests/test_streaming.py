"""Long clips streamed from disk give what the in-memory path gives, a block at a time.

Pieces against their whole-signal references (decode + resample, STFT, iSTFT, mask
stitching, map columns, mask.npy), then ``run_explain`` with streaming forced on
(``STREAM_MIN_WINDOWS`` set low) against the in-memory path on the same clips: rows,
WAVs and masks; ``--top-k``; a clip of exactly one window and one shorter than an
FFT; a corrupt file; a full disk.
"""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import tests.fake_model  # noqa: F401  (registers --clap fake)
import tests.test_explain  # noqa: F401  (registers the "energy" explainer)
from lmaczs_cli.audio import load_audio, resample
from lmaczs_cli.jobs.explain import ExplainConfig, run_explain
from lmaczs_cli.render import MAP_SIZE
from lmaczs_cli.runtime import RunOptions
from lmaczs_cli.signal import STFTConfig, istft, stft
from lmaczs_cli.streaming import engine
from lmaczs_cli.streaming.sinks import MapColumns, NpySink
from lmaczs_cli.streaming.source import SampleBuffer, StreamResampler, model_rate_blocks
from lmaczs_cli.streaming.spectral import MaskStitcher, OverlapAdd, frames_stft
from lmaczs_cli.windows import ClipWindow, stitch_masks, window_starts

#: float32 rounding: block-wise FFTs and convolutions sum in another order than whole-signal ones
TOL = 2e-5


def _pieces(n: int, seed: int, most: int = 3000) -> list[int]:
    """Random piece lengths summing to ``n``."""
    rng = np.random.default_rng(seed)
    out = []
    while sum(out) < n:
        out.append(min(int(rng.integers(1, most)), n - sum(out)))
    return out


# -- 1. decode and resample in blocks ------------------------------------------------------------
@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (22050, 8000), (8000, 16000), (16000, 16000),
                                            (44100, 48000)])
def test_stream_resampler_equals_resampling_the_whole_signal(orig: int, new: int) -> None:
    x = torch.randn(30011, generator=torch.Generator().manual_seed(orig + new))
    whole = resample(x, orig, new)
    rs = StreamResampler(orig, new)
    parts, pos = [], 0
    for k in _pieces(x.shape[0], orig):
        parts.append(rs.push(x[pos : pos + k]))
        pos += k
    y = torch.cat([*parts, rs.finish()])
    assert y.shape == whole.shape
    assert float((y - whole).abs().max()) < 1e-6 * float(x.abs().max())
    if orig != new:  # negative control: resampling each piece on its own leaves seams
        naive = torch.cat([resample(x[i : i + 997], orig, new) for i in range(0, x.shape[0], 997)])
        n = min(naive.shape[0], whole.shape[0])
        assert float((naive[:n] - whole[:n]).abs().max()) > 1e-2


def test_file_blocks_equal_decoding_the_whole_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal((44100 * 3 + 17, 2))).astype(np.float32)
    path = tmp_path / "st.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    whole = load_audio(path, 16000).wave
    streamed = torch.cat(list(model_rate_blocks(path, 16000, read_frames=4099)))
    assert streamed.shape == whole.shape
    assert float((streamed - whole).abs().max()) < 1e-6


# -- 2. STFT, iSTFT and stitching in blocks -------------------------------------------------------
@pytest.mark.parametrize("cfg", [STFTConfig(256, 64, 256), STFTConfig(512, 160, 512),
                                 STFTConfig(512, 128, 400)])
@pytest.mark.parametrize("n", [20011, 512, 4096])
def test_block_stft_and_overlap_add_equal_the_whole_signal(cfg: STFTConfig, n: int) -> None:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=g)
    mag, ph = (a[0] for a in stft(x[None], cfg))
    mask = torch.rand(mag.shape, generator=g)
    ref = istft((mask * mag)[None], ph[None], cfg, n)[0]
    buf = SampleBuffer(iter(x.split(1000)), n)
    ola, t, got_mag, wave = OverlapAdd(cfg, n), 0, [], []
    for k in _pieces(mag.shape[1], n, 300):
        m, p = frames_stft(buf, cfg, t, t + k)
        buf.drop_before((t + k) * cfg.hop_length - cfg.n_fft)  # the block needs nothing older
        got_mag.append(m)
        wave.append(ola.push(torch.polar(mask[:, t : t + k] * m, p)))
        t += k
    wave.append(ola.finish())
    assert torch.equal(torch.cat(got_mag, 1), mag)
    y = torch.cat(wave)
    assert y.shape == (n,) and float((y - ref).abs().max()) < 1e-5
    # hand check: the unmasked STFT overlap-added gives the signal back
    ola = OverlapAdd(cfg, n)
    y = torch.cat([ola.push(torch.polar(mag, ph)), ola.finish()])
    assert float((y - x).abs().max()) < 1e-5


def test_sample_buffer_reflects_like_a_centred_stft_and_refuses_dropped_samples() -> None:
    x = torch.arange(10.0)
    buf = SampleBuffer(iter([x[:4], x[4:]]), 10)
    assert buf.span(-3, 2, reflect=True).tolist() == [3, 2, 1, 0, 1]
    assert buf.span(8, 13, reflect=True).tolist() == [8, 9, 8, 7, 6]
    assert buf.span(8, 12).tolist() == [8, 9, 0, 0]
    buf.drop_before(5)
    with pytest.raises(RuntimeError, match="already dropped"):
        buf.span(4, 6)


@pytest.mark.parametrize("n", [8000, 8001, 20011, 31999])
def test_mask_stitcher_equals_stitch_masks(n: int) -> None:
    w, hop = 8000, 64
    starts = window_starts(n, w, hop)
    masks = torch.rand(len(starts), 129, w // hop + 1, generator=torch.Generator().manual_seed(n))
    wins = [ClipWindow(torch.zeros(w), s, min(w, n - s)) for s in starts]
    ref = stitch_masks(masks, wins, n, hop).clamp(0, 1)
    st = MaskStitcher(starts, n, hop)
    got = torch.cat([st.add(i, masks[i]) for i in range(len(starts))], 1)
    assert torch.equal(got, ref)
    assert st.done == ref.shape[1] == n // hop + 1


def test_map_columns_and_npy_sink(tmp_path: Path) -> None:
    a = torch.rand(7, 1003, generator=torch.Generator().manual_seed(0))
    cols = 10
    mx, mean = MapColumns(7, 1003, "max", columns=cols), MapColumns(7, 1003, "mean", columns=cols)
    npy = NpySink(tmp_path / "m.tmp", tmp_path / "m.npy", (7, 1003))
    t = 0
    for k in _pieces(1003, 3, 150):
        mx.add(a[:, t : t + k])
        mean.add(a[:, t : t + k])
        npy.write(a[:, t : t + k])
        t += k
    npy.finish()
    col = np.arange(1003) * cols // 1003
    arr = a.numpy()
    assert np.array_equal(mx.result(), np.stack([arr[:, col == c].max(1) for c in range(cols)], 1))
    assert np.allclose(mean.result(), np.stack([arr[:, col == c].mean(1) for c in range(cols)], 1), atol=1e-6)
    assert np.array_equal(np.load(tmp_path / "m.tmp"), arr)


# -- 3. the job: streamed and in-memory give the same results ------------------------------------
def _fake_decoder(folder: Path) -> Path:
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.explainers.decoder import MaskDecoder
    from tests.fake_model import FakeModel

    torch.manual_seed(0)
    m = FakeModel()
    path = folder / "fake-decoder.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(m, width=16), m.spec_id()))
    return path


def _clip(path: Path, sr: int, seconds: float, stereo: bool = False, seed: int = 0) -> Path:
    n = int(round(sr * seconds))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    x = 0.2 * np.sin(2 * np.pi * 440 * t) * (t % 1.3 < 0.4) + 0.05 * rng.standard_normal(n)
    sf.write(path, np.stack([x, x[::-1]], 1) if stereo else x, sr, subtype="FLOAT")
    return path


def _run(clips: list[Path], out: Path, method: str, monkeypatch, streamed: bool, **kw) -> list[dict]:
    monkeypatch.setattr(engine, "STREAM_MIN_WINDOWS", 1 if streamed else 10**9)
    cfg = ExplainConfig(inputs=clips, out=out, methods=[method], run=RunOptions(clap="fake", device="cpu",
                        batch_size=kw.pop("batch_size", 8)), prompt=kw.pop("prompt", ["a beep", "rain"]),
                        residual=True, save_mask=True, **kw)
    run_explain(cfg)
    with (out / "results.csv").open() as f:
        return sorted(csv.DictReader(f), key=lambda r: (r["clip"], r["prompt"]))


def _compare(a: list[dict], b: list[dict]) -> dict[str, float]:
    """Largest differences between two runs' rows and files (rows in the same order)."""
    assert [(r["clip"], r["prompt"], r["rank"], r["status"]) for r in a] == \
           [(r["clip"], r["prompt"], r["rank"], r["status"]) for r in b]
    diff = {"similarity": 0.0, "masked_similarity": 0.0, "mask_mean": 0.0, "wav": 0.0, "residual_wav": 0.0,
            "mask": 0.0}
    for ra, rb in zip(a, b, strict=True):
        if ra["status"] != "ok":
            assert ra["error"] == rb["error"]
            continue
        for k in ("similarity", "masked_similarity", "mask_mean"):
            diff[k] = max(diff[k], abs(float(ra[k]) - float(rb[k])))
        for k in ("wav", "residual_wav"):
            xa, sra = sf.read(ra[k], dtype="float32")
            xb, srb = sf.read(rb[k], dtype="float32")
            assert sra == srb and xa.shape == xb.shape
            diff[k] = max(diff[k], float(np.abs(xa - xb).max()))
        ma, mb = np.load(ra["mask"]), np.load(rb["mask"])
        assert ma.shape == mb.shape
        diff["mask"] = max(diff["mask"], float(np.abs(ma - mb).max()))
        assert Image.open(rb["png"]).size == MAP_SIZE
    return diff


def test_clips_of_at_least_stream_min_windows_are_streamed(tmp_path: Path) -> None:
    from lmaczs_cli.windows import split_clip

    m = tests.fake_model.FakeModel()  # 1 s windows, half-overlapping
    long = []
    for seconds in (0.5, 5.6, 6.0, 30.0):
        p = _clip(tmp_path / f"{seconds}.wav", 22050, seconds)
        assert engine.clip_windows(p, m) == len(split_clip(load_audio(p, 8000).wave, m))
        long.append(engine.is_long(p, m))
    assert engine.STREAM_MIN_WINDOWS == 12 and long == [False, False, True, True]  # 11 and 12 windows
    assert engine.clip_windows(tmp_path / "missing.wav", m) is None


def test_streamed_job_equals_in_memory_job(tmp_path: Path, monkeypatch) -> None:
    clips = [_clip(tmp_path / "a.wav", 22050, 9.37, stereo=True),
             _clip(tmp_path / "b.wav", 8000, 6.001, seed=1),
             _clip(tmp_path / "one.wav", 8000, 1.0, seed=2),  # exactly one window
             _clip(tmp_path / "tiny.wav", 16000, 0.01, seed=3)]  # shorter than one FFT
    assert engine.clip_windows(clips[0], tests.fake_model.FakeModel()) > 15  # many windows
    dec = {"lmaczs": {"decoder": str(_fake_decoder(tmp_path))}}
    for method, some in (("lmaczs", clips), ("energy", clips[:2])):  # the trained decoder, and a plain mask
        kw = {"method_options": dec} if method == "lmaczs" else {}
        mem = _run(some, tmp_path / f"mem-{method}", method, monkeypatch, streamed=False, **kw)
        st = _run(some, tmp_path / f"st-{method}", method, monkeypatch, streamed=True, batch_size=3, **kw)
        assert len(st) == 2 * len(some) and {r["status"] for r in st} == {"ok"}
        diff = _compare(mem, st)
        assert max(diff.values()) < TOL, diff
    # negative control: another clip's explanation is far from this one at that tolerance
    c = _clip(tmp_path / "c.wav", 8000, 6.001, seed=9)
    other = _run([c], tmp_path / "other", "energy", monkeypatch, streamed=True)
    b = next(r for r in st if r["clip"].endswith("b.wav") and r["prompt"] == other[0]["prompt"])
    wb, wc = sf.read(b["wav"], dtype="float32")[0], sf.read(other[0]["wav"], dtype="float32")[0]
    assert float(np.abs(wb - wc).max()) > 100 * TOL


def test_top_k_streams_a_similarity_pass_first(tmp_path: Path, monkeypatch) -> None:
    from lmaczs_cli.explaining import ExplainEngine

    clip = _clip(tmp_path / "a.wav", 16000, 7.3)
    prompts = ["a beep", "rain", "dog barking", "a siren"]
    mem = _run([clip], tmp_path / "mem", "energy", monkeypatch, streamed=False, prompt=prompts, top_k=2)
    encoded = []
    real = ExplainEngine._encode_windows
    monkeypatch.setattr(ExplainEngine, "_encode_windows",
                        lambda self, w: encoded.append(len(w)) or real(self, w))
    st = _run([clip], tmp_path / "st", "energy", monkeypatch, streamed=True, prompt=prompts, top_k=2)
    assert len(st) == 2 and max(_compare(mem, st).values()) < TOL
    assert sum(encoded) == 2 * engine.clip_windows(clip, tests.fake_model.FakeModel())  # each window twice


# -- 4. failures -----------------------------------------------------------------------------------
def test_corrupt_long_file_is_one_error_row_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    good = _clip(tmp_path / "good.wav", 8000, 4.0)
    bad = tmp_path / "bad.flac"
    sf.write(bad, np.random.default_rng(0).standard_normal(8000 * 8).astype(np.float32) * 0.1, 8000)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)  # decodes fine for a while, then fails
    bad.write_bytes(bytes(data))
    nan = tmp_path / "nan.wav"
    x = np.zeros(8000 * 5, dtype=np.float32)
    x[30000] = np.nan
    sf.write(nan, x, 8000, subtype="FLOAT")
    out = tmp_path / "out"
    rows = _run([good, bad, nan], out, "energy", monkeypatch, streamed=True)
    by_clip = {Path(r["clip"]).name: r for r in rows}
    assert [r["status"] for r in rows if r["clip"] == str(good)] == ["ok", "ok"]
    assert by_clip["bad.flac"]["status"] == "error" and "corrupt audio data" in by_clip["bad.flac"]["error"]
    assert by_clip["nan.wav"]["error"] == f"{nan}: contains NaN or Inf samples"  # as in memory
    assert len(rows) == 4
    files = [p.name for p in out.rglob("*") if p.is_file()]
    assert not [f for f in files if ".part" in f]
    assert sorted(files).count("explanation.wav") == 2  # the good clip's two prompts only


def test_disk_full_while_streaming_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app

    clips = [_clip(tmp_path / "a.wav", 8000, 4.0), _clip(tmp_path / "b.wav", 8000, 4.0, seed=1)]
    real = sf.SoundFile.write

    def full_on_b(self, data):  # the first clip's files are written; the second clip fills the disk
        if "/b_" in str(self.name):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(engine, "STREAM_MIN_WINDOWS", 1)
    monkeypatch.setattr(sf.SoundFile, "write", full_on_b)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["baseline", "--method", "gradcam", *map(str, clips), "-p", "beep",
                                 "--clap", "fake", "--device", "cpu", "--out", str(out), "--quiet"])
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1].endswith("explanation.wav: no space left on device")
    assert "Traceback" not in r.output
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [Path(x["clip"]).name for x in rows] == ["a.wav"] and Path(rows[0]["wav"]).is_file()
    assert not [p for p in out.rglob("*") if ".part" in p.name]
    second = next(p for p in out.iterdir() if p.name.startswith("b_"))
    assert not [p for p in second.rglob("*") if p.is_file()]


# -- 5. the Python API -----------------------------------------------------------------------------
def test_explain_to_folder_matches_explain(tmp_path: Path) -> None:
    import lmaczs_cli

    clip = _clip(tmp_path / "a.wav", 11025, 5.5, stereo=True)
    model = lmaczs_cli.load_model("fake", device="cpu")
    ex = lmaczs_cli.load_explainer("energy", model)
    mem = lmaczs_cli.explain(ex, clip, ["a beep", "rain"])
    saved = lmaczs_cli.explain_to_folder(ex, clip, ["a beep", "rain"], tmp_path / "out", save_mask=True)
    assert [s.rank for s in saved] == [1, 2]
    for e in mem:
        s = next(x for x in saved if x.prompt == e.prompt)
        assert s.rank == e.rank and abs(s.similarity - e.similarity) < TOL
        assert abs(s.masked_similarity - e.masked_similarity) < TOL and abs(s.mask_mean - e.mask_mean) < TOL
        wav, sr = sf.read(s.paths["wav"], dtype="float32")
        assert sr == 11025 and float(np.abs(wav - e.waveform()).max()) < TOL
        assert float(np.abs(np.load(s.paths["mask"]) - e.mask.numpy()).max()) < TOL
        assert s.paths["wav"].parent.parent == tmp_path / "out"
