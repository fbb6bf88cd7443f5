"""ClipDataset / collate_clips: windows at the model rate from any file, seeded crops and captions,
error records for bad files, DataLoader workers."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lmaczs_cli.audio import load_audio
from lmaczs_cli.data.esc50 import load_esc50
from lmaczs_cli.data.items import AudioItem
from lmaczs_cli.data.loading import ClipDataset, collate_clips
from lmaczs_cli.data.us8k import load_us8k
from lmaczs_cli.models.base import Window
from tests.fixtures_data import US8K_ROWS, make_us8k, write_clip, write_corrupt

SR = 16000
WIN = SR  # 1 s windows keep the fixtures tiny
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ESC50_MINI = SHARED / "data" / "esc50-mini"


class RepeatPad:
    """A model-style ``fit``: repeat a short clip to fill the window; valid = one copy."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, wave: torch.Tensor) -> Window:
        if wave.shape[0] >= self.n:
            return Window(wave[: self.n], self.n)
        reps = wave.repeat(math.ceil(self.n / wave.shape[0]))[: self.n]
        return Window(reps, int(wave.shape[0]))


def _bad_fit(wave: torch.Tensor) -> Window:
    return Window(wave[:10], 10)


@pytest.fixture(scope="module")
def us8k(tmp_path_factory: pytest.TempPathFactory) -> list[AudioItem]:
    return load_us8k(make_us8k(tmp_path_factory.mktemp("us8k"))).items


@pytest.fixture(scope="module")
def us8k_records(us8k: list[AudioItem]) -> list[dict]:
    ds = ClipDataset(us8k, SR, WIN, crop="start")
    return [ds[i] for i in range(len(ds))]


def _expected_len(sr: int, seconds: float) -> int:
    return math.ceil(round(sr * seconds) * SR / sr)


def test_any_rate_channels_depth_gives_mono_window(us8k_records: list[dict]) -> None:
    for rec, (name, _f, _c, _cls, sr, _ch, _sub, sec) in zip(us8k_records, US8K_ROWS, strict=True):
        assert rec["error"] is None, rec["error"]
        assert Path(rec["path"]).name == name
        assert rec["wave"].shape == (WIN,) and rec["wave"].dtype == torch.float32
        assert rec["orig_sample_rate"] == sr and rec["orig_num_samples"] == round(sr * sec)
        n = _expected_len(sr, sec)
        assert rec["valid"] == min(n, WIN), name
        assert rec["offset"] == 0
        assert torch.all(rec["wave"][rec["valid"] :] == 0)  # zero-padded at the end
        assert rec["wave"][: rec["valid"]].abs().max() > 0.3
    # the 0.2 s clip: 3200 real samples at 16 kHz; the 4 s clip: cropped to the window
    by_name = {Path(r["path"]).name: r for r in us8k_records}
    assert by_name["102305-6-0-0.wav"]["valid"] == 3200
    assert by_name["105029-8-0-1.wav"]["valid"] == WIN


def test_stereo_is_averaged_and_window_equals_full_decode(us8k_records: list[dict]) -> None:
    for rec in us8k_records:
        full = load_audio(rec["path"], SR).wave
        v = rec["valid"]
        assert torch.allclose(rec["wave"][:v], full[:v], atol=1e-6), rec["path"]
    # 22.05 kHz stereo tone: channels at 0.5 and 0.25 -> mono peak 0.375
    stereo = next(r for r in us8k_records if r["orig_sample_rate"] == 22050)
    assert stereo["wave"].abs().max().item() == pytest.approx(0.375, abs=0.01)


def test_label_and_text_for_label_sets(us8k_records: list[dict]) -> None:
    assert us8k_records[0]["label"] == "dog bark" and us8k_records[0]["text"] == "dog bark"


def test_random_crop_is_seeded_and_exact(tmp_path: Path) -> None:
    p = write_clip(tmp_path / "long.wav", 44100, 3.0, freq=1234.5)
    items = [AudioItem(str(p), ("x",))]
    full = load_audio(p, SR).wave
    offsets = []
    for epoch in range(6):
        ds = ClipDataset(items, SR, WIN, crop="random", seed=7)
        ds.set_epoch(epoch)
        rec = ds[0]
        again = ds[0]
        assert rec["offset"] == again["offset"] and torch.equal(rec["wave"], again["wave"])
        o = rec["offset"]
        assert 0 <= o <= full.shape[0] - WIN and rec["valid"] == WIN
        assert torch.allclose(rec["wave"], full[o : o + WIN], atol=1e-6)
        offsets.append(o)
    assert len(set(offsets)) >= 4
    other_seed = ClipDataset(items, SR, WIN, crop="random", seed=8)
    assert [other_seed.set_epoch(e) or other_seed[0]["offset"] for e in range(6)] != offsets
    # a clip shorter than the window is never shifted
    short = write_clip(tmp_path / "short.wav", 8000, 0.5)
    rec = ClipDataset([AudioItem(str(short), ())], SR, WIN, crop="random", seed=1)[0]
    assert rec["offset"] == 0 and rec["valid"] == 8000 and rec["text"] is None


def test_caption_choice_per_seed_epoch_index(tmp_path: Path) -> None:
    p = write_clip(tmp_path / "c.wav", SR, 0.1)
    caps = tuple(f"caption {i}" for i in range(5))
    items = [AudioItem(str(p), caps)] * 3
    ds = ClipDataset(items, SR, WIN, crop="random", seed=3)
    seen = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        picks = [ds.choose_text(i) for i in range(3)]
        assert picks == [ds[i]["text"] for i in range(3)]
        seen.append(picks)
    flat = [t for picks in seen for t in picks]
    assert set(flat) <= set(caps) and len(set(flat)) >= 4
    assert len({tuple(p) for p in seen}) > 1  # epochs differ
    assert any(len(set(p)) > 1 for p in seen)  # indices differ within an epoch
    ds2 = ClipDataset(items, SR, WIN, crop="start", seed=3)
    ds2.set_epoch(5)
    assert [ds2.choose_text(i) for i in range(3)] == seen[5]


def test_fit_decides_padding(tmp_path: Path) -> None:
    short = write_clip(tmp_path / "short.wav", SR, 0.3)
    long = write_clip(tmp_path / "long.wav", SR, 2.0)
    items = [AudioItem(str(short), ()), AudioItem(str(long), ())]
    ds = ClipDataset(items, SR, WIN, fit=RepeatPad(WIN))
    s, lg = ds[0], ds[1]
    assert s["valid"] == 4800 and s["wave"].shape == (WIN,)
    assert torch.allclose(s["wave"][4800:9600], s["wave"][:4800])  # repeated, not zeros
    assert lg["valid"] == WIN
    bad = ClipDataset(items, SR, WIN, fit=_bad_fit)
    with pytest.raises(ValueError, match="fit returned a wave of shape"):
        bad[0]


def test_bad_files_become_error_records(tmp_path: Path) -> None:
    good = write_clip(tmp_path / "good.wav", SR, 0.5)
    corrupt = write_corrupt(tmp_path / "corrupt.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("hello, not audio")
    paths = [good, corrupt, tmp_path / "gone.wav", empty, text]
    ds = ClipDataset([AudioItem(str(p), ("t",)) for p in paths], SR, WIN)
    recs = [ds[i] for i in range(len(paths))]
    assert recs[0]["error"] is None and recs[0]["valid"] == 8000
    for rec, reason in zip(
        recs[1:], ["corrupt", "file not found", "empty file", "not an audio file"], strict=True
    ):
        assert rec["error"].startswith(rec["path"] + ": ") and reason in rec["error"], rec["error"]
        assert "\n" not in rec["error"]
        assert rec["valid"] == 0 and rec["wave"].shape == (WIN,) and not rec["wave"].any()
        assert rec["orig_sample_rate"] == 0 and rec["text"] == "t"


def test_dataloader_with_workers(tmp_path: Path, us8k: list[AudioItem]) -> None:
    corrupt = write_corrupt(tmp_path / "bad.wav")
    items = list(us8k) + [AudioItem(str(corrupt), ("x",))]
    ds = ClipDataset(items, SR, WIN, crop="random", seed=0)
    pickle.dumps(ds)
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_clips)
    batches = list(dl)
    assert [b["wave"].shape for b in batches] == [(4, WIN), (4, WIN), (1, WIN)]
    idx = [i for b in batches for i in b["index"]]
    assert idx == list(range(len(items)))
    errors = [e for b in batches for e in b["error"]]
    assert errors[:-1] == [None] * len(us8k) and "bad.wav" in errors[-1]
    valid = torch.cat([b["valid"] for b in batches])
    assert valid.dtype == torch.long and valid[-1] == 0
    # the same records as in the main process
    single = collate_clips([ds[i] for i in range(4)])
    assert torch.equal(single["wave"], batches[0]["wave"])


def test_crop_none_and_collate_padding(tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.wav", 8000, 0.5)
    b = write_clip(tmp_path / "b.wav", SR, 1.5)
    ds = ClipDataset([AudioItem(str(a), ("a",), "A"), AudioItem(str(b), ("b",), "B")], SR, WIN, crop="none")
    ra, rb = ds[0], ds[1]
    assert ra["wave"].shape == (8000,) and rb["wave"].shape == (24000,) and rb["valid"] == 24000
    batch = collate_clips([ra, rb])
    assert batch["wave"].shape == (2, 24000) and batch["valid"].tolist() == [8000, 24000]
    assert not batch["wave"][0, 8000:].any()
    assert batch["label"] == ["A", "B"] and batch["text"] == ["a", "b"] and batch["error"] == [None, None]
    assert batch["path"] == [str(a), str(b)] and batch["orig_sample_rate"] == [8000, SR]
    with pytest.raises(ValueError, match="crop must be one of"):
        ClipDataset([], SR, WIN, crop="centre")


def test_real_esc50_clips_window() -> None:
    if not (ESC50_MINI / "meta" / "esc50.csv").exists():
        pytest.skip("../shared/data/esc50-mini is not present")
    items = load_esc50(ESC50_MINI, folds=[1]).items[:2]
    ds = ClipDataset(items, 44100, 5 * 44100)  # their own rate: no resampling
    for i, item in enumerate(items):
        rec = ds[i]
        assert rec["error"] is None and rec["orig_sample_rate"] == 44100
        assert rec["orig_num_samples"] == 220500 and rec["valid"] == 220500
        assert rec["text"] == item.label and rec["wave"].abs().max() > 0
