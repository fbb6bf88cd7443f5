"""What produced a result and whether to trust it: run.json, result columns, warnings, the map."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli.cli.app import app
from lmaczs_cli.render import MAP_SIZE

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "lmaczs_cli" / "assets" / "examples" / "scene.wav"


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_run_json_and_result_columns_say_what_produced_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        [
            "explain",
            str(SCENE),
            "--clap",
            "small",
            "--labels",
            "synth",
            "--top-k",
            "2",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "explain" and run["argv"][1:3] == ["explain", str(SCENE)] or run["argv"]
    weights = REPO / "lmaczs_cli" / "assets" / "small" / "model.safetensors"
    decoder = REPO / "lmaczs_cli" / "assets" / "small" / "decoder.pt"
    assert run["model"] == {
        "name": "small",
        "checkpoint": str(weights),
        "checkpoint_sha256": _sha(weights),
        "random_weights": False,
    }
    lm = run["methods"]["lmaczs"]
    assert (
        lm["decoder"] == str(decoder)
        and lm["decoder_sha256"] == _sha(decoder)
        and lm["mask_domain"] == "stft"
    )
    assert run["seed"] == 0 and run["precision"] == "fp32" and run["device"] == "cpu"
    assert run["started"] <= run["finished"]
    rows = _rows(out / "results.csv")
    assert len(rows) == 2
    # the only warning a clean run on the demo may carry: pairs whose s~ left s by more than the
    # tolerance (the evidence maps' "knock" matches better than the mixture), counted as in the table
    unfaithful = sum(r["faithful"] == "0" for r in rows)
    expected = [f"{unfaithful} of 2 explanations are not faithful"] if unfaithful else []
    assert [w.split(" (")[0] for w in run["warnings"]] == expected
    for row in rows:
        assert row["run_id"] == run["run_id"] and row["model"] == "small"
        assert row["checkpoint"] == str(weights) and row["decoder"] == str(decoder)
        assert row["faithful"] == str(
            int(abs(float(row["similarity"]) - float(row["masked_similarity"])) <= 0.1)
        )
        assert row["in_domain"] == "1"  # the bundled scene is from the model's own world
    # a second run into the same folder: runs.jsonl keeps both records, run.json the latest
    assert (
        runner.invoke(
            app,
            [
                "explain",
                str(SCENE),
                "--clap",
                "small",
                "--prompt",
                "this is a sound of rain",
                "--out",
                str(out),
                "--quiet",
            ],
        ).exit_code
        == 0
    )
    records = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert len(records) == 2 and records[1]["run_id"] == json.loads((out / "run.json").read_text())["run_id"]
    assert len({x["run_id"] for x in _rows(out / "results.csv")}) == 2


def test_map_title_names_the_model_and_a_random_model_gets_a_banner(tmp_path: Path) -> None:
    sr = 8000
    t = np.arange(sr) / sr
    clip = tmp_path / "c.wav"
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32), sr, subtype="PCM_16")
    r = runner.invoke(
        app,
        [
            "baseline",
            "--method",
            "gradcam++",
            str(clip),
            "--prompt",
            "a beep",
            "--clap",
            "fake",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "lmaczs: warning: fake has RANDOM WEIGHTS" in r.stderr  # one clear line, no Python warning
    assert "UserWarning" not in r.output
    (row,) = _rows(tmp_path / "o" / "results.csv")
    assert Path(row["png"]).parent.name == "gradcampp" and Path(row["png"]).parent.parent.name.startswith(
        "a_beep_"
    )
    img = np.asarray(Image.open(row["png"]).convert("RGB"))
    assert img.shape == (MAP_SIZE[1], MAP_SIZE[0], 3)
    top = img[5:20, 100:1400].reshape(-1, 3).mean(0)
    assert top[0] > 150 and top[1] < 80 and top[2] < 80  # the red RANDOM WEIGHTS banner
    assert json.loads((tmp_path / "o" / "run.json").read_text())["model"]["random_weights"] is True
    info = sf.info(row["wav"])
    assert info.subtype == "PCM_16" and info.samplerate == sr  # the input's own sample format


def test_explanations_never_exceed_full_scale() -> None:
    from lmaczs_cli.audio import within_full_scale

    x = np.array([0.5, -1.2, 1.005], dtype=np.float32)
    y = within_full_scale(x)
    assert np.abs(y).max() <= 32767 / 32768 and np.allclose(y / y[0], x / x[0])
    z = np.array([0.5, -0.9], dtype=np.float32)
    assert within_full_scale(z) is z


def test_bundled_model_warns_on_real_recordings_and_not_on_its_own_world(
    esc50_mini: Path, tmp_path: Path
) -> None:
    clips = sorted((esc50_mini / "audio").glob("*.wav"))[:6]
    r = runner.invoke(
        app,
        [
            "explain",
            *map(str, clips),
            "--clap",
            "small",
            "--labels",
            "synth",
            "--top-k",
            "1",
            "--no-score",
            "--out",
            str(tmp_path / "real"),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    warning = [x for x in r.stderr.splitlines() if "unlike the audio small was trained on" in x]
    assert len(warning) == 1 and "synthetic world" in warning[0]
    recorded = json.loads((tmp_path / "real" / "run.json").read_text())["warnings"]
    assert warning[0].removeprefix("lmaczs: warning: ") in recorded
    rows = _rows(tmp_path / "real" / "results.csv")
    assert sum(x["in_domain"] == "0" for x in rows) >= 4


def test_domain_check_both_ways(esc50_mini: Path) -> None:
    """Held-out synthetic scenes (a seed never used for the statistics) are inside, real clips mostly not."""
    import torch

    import lmaczs_cli
    from lmaczs_cli.audio import load_audio
    from lmaczs_cli.data.synthetic import SyntheticDataset

    m = lmaczs_cli.load_model("small", device="cpu")
    ds = SyntheticDataset(60, 4242, "test")
    synth = torch.stack([m.fit_window(ds[i].wave.float()).wave for i in range(len(ds))])
    real = torch.stack(
        [m.fit_window(load_audio(p, 16000).wave).wave for p in sorted((esc50_mini / "audio").glob("*.wav"))]
    )
    with torch.no_grad():
        inside = m.domain_check(m.encode(m.spectrogram(synth)[0]).embedding)
        outside = ~m.domain_check(m.encode(m.spectrogram(real)[0]).embedding)
    assert float(inside.float().mean()) >= 0.9
    assert float(outside.float().mean()) >= 0.6
    rand = lmaczs_cli.load_model("small", "random", device="cpu")
    assert rand.domain_check(torch.randn(2, 128)) is None  # no statistics for other weights


def test_domain_statistics_match_the_shipped_weights() -> None:
    """Retraining the small model without `python -m lmaczs_cli.dev.small_domain --write` fails here."""
    import lmaczs_cli
    from lmaczs_cli.models.small import domain as small_domain
    from lmaczs_cli.models.small.model import bundled_weights

    m = lmaczs_cli.load_model("small", device="cpu")
    with np.load(small_domain.domain_file(bundled_weights())) as z:
        assert str(z["digest"]) == small_domain.weights_digest(m)


@pytest.mark.slow
def test_evaluate_warns_when_the_model_is_mostly_wrong(esc50_mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "esc50",
            "--data-root",
            str(esc50_mini),
            "--clap",
            "small",
            "--method",
            "lmaczs",
            "--max-samples",
            "8",
            "--plots",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "zero-shot accuracy on these clips is" in r.stderr and "below 50 %" in r.stderr
    run = json.loads((out / "run.json").read_text())
    assert any("zero-shot accuracy" in w for w in run["warnings"])
    assert all(x["run_id"] == run["run_id"] and x["model"] == "small" for x in _rows(out / "samples.csv"))
    for name in ("summary.png", "mask_vs_similarity.png"):
        assert Image.open(out / name).size[0] > 300


def test_fast_map_is_the_same_picture_as_the_figure(tmp_path: Path) -> None:
    """The directly drawn PNG and the matplotlib figure show the same three panels."""
    from lmaczs_cli.mapimage import render_map_png

    rng = np.random.default_rng(0)
    mag = np.abs(rng.standard_normal((129, 300))).astype(np.float32)
    mag[20:30, 100:200] = 50.0  # one loud event
    mask = np.zeros_like(mag)
    mask[20:30, 100:200] = 1.0
    path = render_map_png(tmp_path / "m.png", mag, mask, 8000, 64, "title")
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape == (MAP_SIZE[1], MAP_SIZE[0])
    # the mask panel (middle third) is bright where the mask is one and dark elsewhere
    mid = img[:, 500:1000]
    assert mid.max() > 200 and np.percentile(mid[100:400], 10) < 60
    long_path = render_map_png(
        tmp_path / "long.png", np.tile(mag, (1, 50)), np.tile(mask, (1, 50)), 8000, 64, "t"
    )
    assert Image.open(long_path).size == MAP_SIZE  # a long clip is averaged down to the panel's columns


def test_classify_flags_real_recordings_for_the_bundled_model(esc50_mini: Path, tmp_path: Path) -> None:
    clips = sorted((esc50_mini / "audio").glob("*.wav"))[:6]
    base = ["classify", "--clap", "small", "--labels", "synth", "--top-k", "2", "--quiet"]
    r = runner.invoke(app, [*base, *map(str, clips), "--out", str(tmp_path / "real")])
    assert r.exit_code == 0, r.output
    assert sum("unlike the audio small was trained on" in x for x in r.stderr.splitlines()) == 1
    rows = _rows(tmp_path / "real" / "classify.csv")
    assert sum(x["in_domain"] == "0" for x in rows) >= 8  # 2 rows per clip, >= 4 clips outside
    r = runner.invoke(app, [*base, str(SCENE), "--out", str(tmp_path / "own")])
    assert r.exit_code == 0 and "unlike the audio" not in r.stderr
    assert {x["in_domain"] for x in _rows(tmp_path / "own" / "classify.csv")} == {"1"}


def test_a_precision_the_cpu_cannot_use_is_said_and_recorded_as_fp32(tmp_path: Path) -> None:
    r = runner.invoke(app, ["explain", str(SCENE), "--clap", "small", "--prompt", "bell", "--device", "cpu",
                            "--precision", "bf16", "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "--precision bf16 applies on CUDA only: on cpu this run computes in fp32" in r.stderr
    assert json.loads((tmp_path / "o" / "run.json").read_text())["precision"] == "fp32"


def test_sanity_check_flags_real_recordings_for_the_bundled_model(esc50_mini: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["sanity-check", "--dataset", "esc50", "--data-root", str(esc50_mini),
                            "--clap", "small", "--method", "gradcam", "--max-samples", "5",
                            "--out", str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert sum("unlike the audio small was trained on" in x for x in r.stderr.splitlines()) == 1
    rows = _rows(tmp_path / "s" / "ssim_samples.csv")
    assert {x["in_domain"] for x in rows} <= {"0", "1"} and sum(x["in_domain"] == "0" for x in rows) >= 3
