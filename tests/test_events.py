"""*When* the model heard it (#27): activity curves, segments, SED scores and events.csv.

Behaviour on hand-built masks and curves (a mask kept on 0.5-1.0 s gives one segment there,
an empty mask none), sed_eval scores of a hand-made prediction against numbers computed by
hand, the sliding-window baseline's profile on a tone, streamed and in-memory curves alike,
and ``events.csv`` from ``lmaczs explain`` on the demo clip (merged across runs, no rows for a
failed input).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lmaczs_cli.events import SedScorer, activity, activity_from_sums, f1, f1_ci95, segments

HOP = 0.01  # seconds per frame of the small model (hop 160 at 16 kHz)
DEMO = Path(__file__).resolve().parents[1] / "lmaczs_cli" / "assets" / "examples" / "scene.wav"


# -- activity and segments ----------------------------------------------------------------------
def test_evidence_in_half_a_second_gives_one_segment_there() -> None:
    rng = np.random.default_rng(0)
    mag = rng.uniform(0.5, 1.5, (257, 501))
    mask = np.zeros_like(mag)
    mask[:, 50:100] = 1.0  # frames 0.50 ... 0.99 s
    a = activity(mask, mag)
    assert a.shape == (501,)
    assert np.allclose(a[50:100], 1.0) and np.allclose(a[:50], 0.0) and np.allclose(a[100:], 0.0)
    (seg,) = segments(a, HOP, 0.2)
    assert seg.onset == pytest.approx(0.5) and seg.offset == pytest.approx(1.0)
    assert 0.5 <= seg.peak_time < 1.0 and seg.strength == pytest.approx(1.0)


def test_an_empty_mask_has_no_segment() -> None:
    mag = np.random.default_rng(1).uniform(0, 1, (64, 300))
    a = activity(np.zeros_like(mag), mag)
    assert not a.any()
    assert segments(a, HOP, 0.2) == []
    assert segments(a, HOP, 1e-9) == []


def test_activity_is_the_share_of_each_frame_kept_and_near_silence_counts_little() -> None:
    mag = np.ones((10, 4))
    mag[:, 3] = 1e-6  # a near-silent frame
    mask = np.full_like(mag, 0.3)
    mask[:, 3] = 1.0
    a = activity(mask, mag)
    assert np.allclose(a[:3], 0.3)
    assert a[3] < 1e-3  # all of nothing is not evidence
    # a mask constant over frequency gives its own value back (the sliding-window profile)
    prof = np.linspace(0, 1, 4)
    assert np.allclose(activity_from_sums((prof[None] * np.ones((10, 4))).sum(0), np.full(4, 10.0)), prof)


def test_segments_bridge_short_gaps_drop_short_runs_and_use_hysteresis() -> None:
    a = np.zeros(400)
    a[10:30] = 0.8
    a[40:60] = 0.8  # 0.1 s after the first run: bridged
    a[200:205] = 0.9  # 0.05 s: too short
    a[300:310] = 0.5
    a[310:350] = 0.1  # above a quarter of the threshold: extends the run that reached it
    segs = segments(a, HOP, 0.4, min_gap=0.3, min_duration=0.1)
    assert [(round(s.onset, 2), round(s.offset, 2)) for s in segs] == [(0.1, 0.6), (3.0, 3.5)]
    assert segs[1].strength == pytest.approx(0.5) and segs[1].peak_time == pytest.approx(3.0)
    assert segments(np.full(100, 0.09), HOP, 0.4) == []  # never reaches the threshold


# -- SED scores ------------------------------------------------------------------------------------
def test_sed_scores_of_a_hand_made_prediction() -> None:
    ref = [("c", 0.5, 1.0, "a"), ("c", 2.0, 3.0, "b")]
    est = [("c", 0.55, 1.05, "a"),  # onset and offset within their collars: a hit
           ("c", 2.5, 3.0, "b"),  # onset 0.5 s late: a false alarm and a miss
           ("c", 4.0, 4.5, "a")]  # nothing there: a false alarm
    scorer = SedScorer(["a", "b"])
    counts = scorer.add(ref, est)
    assert counts[0].tolist() == [1, 2, 1]  # event-based TP, FP, FN
    # 100 ms segments: a: ref 5-9, est 5-10 and 40-44 (TP 5, FP 6); b: ref 20-29, est 25-29 (TP 5, FN 5)
    assert counts[1].tolist() == [10, 6, 5]
    assert f1(*counts[0]) == pytest.approx(2 / 5)
    assert f1(*counts[1]) == pytest.approx(20 / 31)
    assert scorer.f_measures() == pytest.approx({"event": 2 / 5, "segment": 20 / 31})  # sed_eval's own


def test_offset_collar_is_a_fifth_of_a_long_event() -> None:
    scorer = SedScorer(["a"])
    # a 3 s event: offset collar max(0.2, 0.6) = 0.6 s, so an offset 0.5 s early still counts
    assert scorer.add([("c", 0.0, 3.0, "a")], [("c", 0.1, 2.5, "a")])[0].tolist() == [1, 0, 0]
    assert scorer.add([("d", 0.0, 3.0, "a")], [("d", 0.1, 2.3, "a")])[0].tolist() == [0, 1, 1]


def test_f1_interval_contains_the_estimate() -> None:
    counts = np.array([[1, 0, 0], [0, 1, 1], [2, 1, 0], [1, 1, 1]] * 5, dtype=float)
    lo, hi = f1_ci95(counts)
    assert lo <= f1(*counts.sum(0)) <= hi and lo < hi


# -- the sliding-window baseline and the API --------------------------------------------------
@pytest.fixture(scope="module")
def small():
    import lmaczs_cli

    return lmaczs_cli.load_model("small", device="cpu")


def test_sliding_window_profile_peaks_where_the_sound_is(small) -> None:
    import lmaczs_cli
    from lmaczs_cli.data.synthetic import SceneConfig, generate_scene

    cfg = SceneConfig(classes=("beep", "whistle"), min_events=1, max_events=1, p_silent_background=0.0)
    ex = lmaczs_cli.load_explainer("sliding-window", small)
    for index in range(3):
        scene = generate_scene(5, index, cfg)
        (ev,) = scene.events
        (e,) = lmaczs_cli.explain(ex, (scene.wave, 16000), [f"this is a sound of {ev.cls}"])
        a = e.activity()
        peak = float(np.argmax(a)) * e.frame_seconds
        assert ev.onset - 1.0 <= peak <= ev.offset + 1.0, (index, peak, ev)
        mask = e.mask.numpy()
        assert np.allclose(mask, mask[:1])  # constant over frequency


def test_explanation_segments_on_the_demo_scene(small) -> None:
    import lmaczs_cli

    ex = lmaczs_cli.load_explainer("lmaczs", small)
    bell, knock = lmaczs_cli.explain(ex, str(DEMO), ["this is a sound of bell", "this is a sound of knock"])
    assert len(bell.activity()) == bell.mask.shape[1] and bell.frame_seconds == pytest.approx(HOP)
    (b,) = bell.segments()
    assert 1.4 <= b.onset <= 1.7 and b.offset > 2.0
    # the scene's two knocks sound at about 0.2 s and 0.35 s: one span around them, none later
    (k,) = knock.segments()
    assert k.onset <= 0.15 and 0.3 <= k.offset <= 0.7 and 0.1 <= k.peak_time <= 0.45
    assert bell.segments(threshold=1.01) == []


def test_streamed_activity_equals_the_in_memory_one(small, tmp_path: Path) -> None:
    import soundfile as sf

    import lmaczs_cli

    wave, sr = sf.read(DEMO, dtype="float32")
    long = np.concatenate([wave, wave, wave])  # 15 s: three model windows and then some
    path = tmp_path / "long.wav"
    sf.write(path, long, sr, subtype="FLOAT")
    ex = lmaczs_cli.load_explainer("lmaczs", small)
    (mem,) = lmaczs_cli.explain(ex, str(path), ["this is a sound of bell"])
    (streamed,) = lmaczs_cli.explain_to_folder(ex, path, ["this is a sound of bell"], tmp_path / "out")
    assert streamed.activity().shape == mem.activity().shape
    assert np.allclose(streamed.activity(), mem.activity(), atol=1e-4)
    assert [(round(s.onset, 2), round(s.offset, 2)) for s in streamed.segments()] == [
        (round(s.onset, 2), round(s.offset, 2)) for s in mem.segments()]
    assert len(mem.segments(min_gap=0.3)) == 3  # one bell in each copy of the scene


# -- events.csv from the command line ----------------------------------------------------------
def _events(out: Path) -> list[dict]:
    with (out / "events.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_explain_writes_events_csv_for_the_demo_clip(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app

    out = tmp_path / "out"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    args = ["explain", str(DEMO), str(bad), "--clap", "small", "--labels", "synth", "--top-k", "2",
            "--out", str(out), "--json", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output  # the bad input fails, the demo clip is explained
    rows = _events(out)
    by = {r["label"]: r for r in rows}
    assert set(by) == {"bell", "knock"} and len(rows) == 2  # one span each
    assert 1.4 <= float(by["bell"]["onset"]) <= 1.7 and float(by["bell"]["offset"]) > 2.0
    assert float(by["knock"]["onset"]) <= 0.15 and 0.3 <= float(by["knock"]["offset"]) <= 0.7
    assert float(by["bell"]["threshold"]) == 0.4 and by["bell"]["segment"] == "1"
    assert all(r["clip"] == str(DEMO) for r in rows)  # a failed input has no events rows
    printed = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    spans = {r["label"]: r["events"] for r in printed if r.get("status") == "ok"}
    assert spans["bell"][0]["onset"] == pytest.approx(float(by["bell"]["onset"]))
    assert spans["knock"][0]["offset"] == pytest.approx(float(by["knock"]["offset"]))
    # a second run into the same folder replaces its pairs' rows, never duplicates them
    assert CliRunner().invoke(app, args).exit_code == 1
    assert len(_events(out)) == 2
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".csv") == ["events.csv", "results.csv"]
