"""The synthetic sound world: determinism, ground-truth masks, captions, data set, ``lmaczs synth``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.data import synthetic as W

runner = CliRunner()
QUIET = W.SceneConfig(background=False)


def test_signal_settings() -> None:
    assert (W.SAMPLE_RATE, W.N_SAMPLES, W.N_FREQS, W.N_FRAMES, W.N_MELS) == (
        16000, 80000, 257, 501, 64,
    )
    assert len(W.CLASSES) >= 10


def test_scene_is_deterministic_and_index_dependent() -> None:
    a, b = W.generate_scene(3, 7), W.generate_scene(3, 7)
    assert np.array_equal(a.wave, b.wave) and a.caption == b.caption and a.events == b.events
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert not np.array_equal(a.wave, W.generate_scene(3, 8).wave)
    assert not np.array_equal(a.wave, W.generate_scene(4, 7).wave)
    # a Generator works too
    s = W.generate_scene(np.random.default_rng(0))
    assert s.wave.shape == (W.N_SAMPLES,)


def test_scene_shapes_and_ranges() -> None:
    for i in range(20):
        s = W.generate_scene(0, i)
        assert s.wave.dtype == np.float32 and s.wave.shape == (W.N_SAMPLES,)
        assert 0 < np.abs(s.wave).max() <= 1.0
        assert 1 <= len(s.events) <= 3 and len(set(s.classes)) == len(s.classes)
        assert [e.onset for e in s.events] == sorted(e.onset for e in s.events)
        for e in s.events:
            assert 0 <= e.onset < e.offset <= W.WINDOW_SECONDS
        assert set(s.masks) == set(s.classes)
        for m in s.masks.values():
            assert m.dtype == bool and m.shape == (W.N_FREQS, W.N_FRAMES)
        # masks are exclusive: a bin is dominated by at most one event
        assert np.stack(list(s.masks.values())).sum(0).max() <= 1


def test_power_spectrogram_matches_the_model_stft() -> None:
    import torch

    from lmaczs_cli.signal import STFTConfig, stft

    wave = W.generate_scene(1, 2, with_masks=False).wave.astype(np.float64)
    cfg = STFTConfig(W.N_FFT, W.HOP_LENGTH, W.WIN_LENGTH)
    mag, _ = stft(torch.from_numpy(wave)[None], cfg)
    ours = W.power_spectrogram(wave)
    assert ours.shape == tuple(mag.shape[1:]) == (W.N_FREQS, W.N_FRAMES)
    np.testing.assert_allclose(ours, mag[0].numpy() ** 2, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("key", W.CLASS_KEYS)
def test_isolated_event_mask_covers_its_energy(key: str) -> None:
    cfg = W.SceneConfig(classes=(key,), max_events=1, background=False)
    for i in range(5):
        s = W.generate_scene(11, i, cfg)
        power = W.power_spectrogram(s.wave.astype(np.float64))
        covered = (power * s.masks[key]).sum() / power.sum()
        assert covered >= 0.9, (key, i, covered)


def test_silence_is_never_in_any_mask() -> None:
    half = W.N_FFT // 2
    centres = np.arange(W.N_FRAMES) * W.HOP_LENGTH
    for i in range(30):
        s = W.generate_scene(5, i, QUIET)
        touched = np.zeros(W.N_FRAMES, bool)
        for e in s.events:
            on, off = int(e.onset * W.SAMPLE_RATE), int(e.offset * W.SAMPLE_RATE)
            touched |= (centres + half > on) & (centres - half < off)
        union = np.stack(list(s.masks.values())).any(0)
        assert not union[:, ~touched].any()
        first_on = int(s.events[0].onset * W.SAMPLE_RATE)
        assert np.all(s.wave[:first_on] == 0)  # really silent before the first onset


def test_event_masks_pick_the_dominant_event() -> None:
    t = np.arange(W.N_SAMPLES) / W.SAMPLE_RATE
    low, high = np.sin(2 * np.pi * 500 * t), 0.5 * np.sin(2 * np.pi * 3000 * t)
    masks = W.event_masks(np.stack([low, high]), 0.01 * np.random.default_rng(0).standard_normal(
        W.N_SAMPLES))
    bin_low, bin_high = 500 * W.N_FFT // W.SAMPLE_RATE, 3000 * W.N_FFT // W.SAMPLE_RATE
    inner = slice(2, -2)  # the reflect-padded edge frames smear both tones
    assert masks[0, bin_low, inner].all() and not masks[1, bin_low].any()
    assert masks[1, bin_high, inner].all() and not masks[0, bin_high].any()
    assert not masks[:, 200, inner].any()  # 6.25 kHz: only background there


def test_captions_use_training_phrases_only() -> None:
    heldout = [p for c in W.CLASSES.values() for p in c.heldout]
    for i in range(300):
        s = W.generate_scene(2, i, with_masks=False)
        assert not any(p in s.caption for p in heldout), s.caption
        for e in s.events:
            c = W.CLASSES[e.cls]
            assert any(w in s.caption for w in (*c.train, c.name, *c.clause)), (e.cls, s.caption)


def test_heldout_captions_and_canonical_prompts() -> None:
    cfg = W.SceneConfig(max_events=1, phrases="heldout")
    s = W.generate_scene(0, 1, cfg, with_masks=False)
    assert any(p in s.caption for p in W.CLASSES[s.classes[0]].heldout)
    assert W.canonical_prompts()[0] == "this is a sound of beep"
    assert len(W.class_names()) == len(W.CLASS_KEYS)


def test_resolve_classes() -> None:
    assert W.resolve_classes(["Beep", "white noise burst", "click_train", "beep"]) == (
        "beep", "white noise burst", "click train",
    )
    with pytest.raises(ValueError, match="unknown event class 'dog'"):
        W.resolve_classes(["dog"])


def test_splits_are_disjoint() -> None:
    idx = {s: {W.split_index(i, s) for i in range(100)} for s in W.SPLITS}
    assert not (idx["train"] & idx["test"]) and not (idx["train"] & idx["valid"])
    assert all(W.split_of(i) == "train" for i in idx["train"])
    assert all(W.split_of(i) == "test" for i in idx["test"])


def test_dataset_items_and_loader() -> None:
    import torch

    ds = W.SyntheticDataset(6, seed=1, split="test")
    item = ds[2]
    assert item.wave.dtype == torch.float32 and item.wave.shape == (W.N_SAMPLES,)
    assert item.labels.sum() == len(ds.scene(2).events)
    assert item.label == W.CLASS_KEYS.index(ds.scene(2).classes[0])
    assert torch.equal(ds[2].wave, item.wave)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch.wave.shape == (3, W.N_SAMPLES) and len(batch.caption) == 3
    with pytest.raises(IndexError):
        ds.scene(6)


# -- lmaczs synth --------------------------------------------------------------------
def _synth(out: Path, *args: str):
    return runner.invoke(app, ["synth", "--out", str(out), "--quiet", *args])


def test_synth_cli_writes_decodable_scenes(tmp_path: Path) -> None:
    r = _synth(tmp_path, "--n", "3", "--seed", "1")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open()))
    assert len(rows) == 3
    for row in rows:
        data, sr = sf.read(tmp_path / row["path"])
        assert sr == 16000 and data.shape == (80000,)
        events = json.loads(row["events"])
        masks = np.load(tmp_path / row["mask"])
        assert sorted(masks.files) == sorted(e["class"] for e in events)
        assert all(masks[k].shape == (257, 501) and masks[k].dtype == bool for k in masks.files)
        assert row["caption"] and row["split"] in W.SPLITS
    assert json.loads((tmp_path / "synth.json").read_text())["seed"] == 1


def test_synth_cli_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "4"), (b, "4"), (c, "5")):
        assert _synth(out, "--n", "2", "--seed", seed).exit_code == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 2 + 2 + 2  # wavs, masks, manifest + synth.json
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "audio/000000.wav").read_bytes() != (c / "audio/000000.wav").read_bytes()


def test_synth_cli_event_subset_and_errors(tmp_path: Path) -> None:
    r = _synth(tmp_path, "--n", "4", "--events", "siren,beep", "--max-events", "2", "--no-masks")
    assert r.exit_code == 0, r.output
    for row in csv.DictReader((tmp_path / "manifest.csv").open()):
        assert {e["class"] for e in json.loads(row["events"])} <= {"beep", "siren"}
    assert not (tmp_path / "masks").exists()
    bad = _synth(tmp_path / "x", "--events", "dog")
    assert bad.exit_code == 2 and "unknown event class 'dog'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    assert _synth(tmp_path / "y", "--min-events", "3", "--max-events", "2").exit_code == 2
