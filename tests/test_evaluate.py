"""`lmaczs evaluate` end to end on fixtures in the real ESC-50 / US8K layouts (fake model)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
import tests.test_explain  # noqa: F401  (registers the "ones" explainer)
from lmaczs_cli.cli.app import app
from lmaczs_cli.jobs.evaluate import METRICS, summary_rows
from tests.fixtures_data import make_esc50, make_us8k

runner = CliRunner()
BASE = ["--clap", "fake", "--device", "cpu", "--quiet"]


def _read(p: Path) -> list[dict]:
    with p.open() as f:
        return list(csv.DictReader(f))


def _run(args: list[str]) -> None:
    r = runner.invoke(app, ["evaluate", *args, *BASE])
    assert r.exit_code == 0, r.output


def test_esc50_layout_all_metrics_recomputable(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    out = tmp_path / "eval"
    _run(["--dataset", "esc50", "--data-root", str(root), "--method", "gradcam", "--method", "ones",
          "--condition", "clean", "--condition", "white-noise", "--out", str(out)])
    samples = _read(out / "samples.csv")
    assert len(samples) == 10 * 2 * 2  # clips x methods x conditions
    assert {r["condition"] for r in samples} == {"clean", "white-noise"}
    # every summary number is a function of the sample rows
    want = summary_rows(samples)
    got = _read(out / "summary.csv")
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g["method"], g["condition"], g["metric"]) == (w["method"], w["condition"], w["metric"])
        assert float(g["mean"]) == pytest.approx(float(w["mean"]), rel=1e-5, abs=1e-9)
    # per-row metrics agree with the raw probabilities kept beside them
    for r in samples:
        pc, pin, pout = float(r["P_c"]), float(r["P_in_c"]), float(r["P_out_c"])
        assert float(r["AI"]) == (100.0 if pin > pc else 0.0)
        assert float(r["FF"]) == pytest.approx(pc - pout, abs=1e-5)
        assert float(r["AD"]) == pytest.approx(100 * max(pc - pin, 0) / pc, rel=1e-4, abs=1e-4)
        assert float(r["FidIn"]) == float(int(r["argmax_in"]) == int(r["pred"]))
    # the all-ones mask keeps the prediction: no drop, input fidelity 1, mask mean 1
    ones = [r for r in samples if r["method"] == "ones"]
    assert all(float(r["AD"]) < 1e-3 and float(r["FidIn"]) == 1.0 and float(r["MM"]) == 1.0 for r in ones)
    means = {(r["method"], r["condition"], r["metric"]): float(r["mean"]) for r in got}
    acc = np.mean([int(r["correct"]) for r in samples if r["method"] == "ones" and r["condition"] == "clean"])
    assert means[("ones", "clean", "accuracy")] == pytest.approx(acc)
    assert set(METRICS) <= {m for (_, _, m) in means}


def test_us8k_mixed_files_and_resume(tmp_path: Path) -> None:
    root = make_us8k(tmp_path / "UrbanSound8K")
    out = tmp_path / "eval"
    args = ["--dataset", "us8k", "--data-root", str(root), "--method", "ones", "--out", str(out)]
    _run(args + ["--folds", "1-3"])
    assert len(_read(out / "samples.csv")) == 4
    _run(args + ["--resume"])  # all folds now: the 4 finished rows are kept, 4 more added
    rows = _read(out / "samples.csv")
    assert len(rows) == 8 and len({r["clip"] for r in rows}) == 8
    assert all(r["status"] == "ok" and math.isfinite(float(r["P_c"])) for r in rows)


def test_esc50_mix_condition_and_plots(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    out = tmp_path / "eval"
    _run(["--dataset", "esc50", "--data-root", str(root), "--method", "ones", "--condition", "esc50-mix",
          "--max-samples", "4", "--plots", "--out", str(out)])
    assert len(_read(out / "samples.csv")) == 4
    assert (out / "mask_vs_similarity.png").stat().st_size > 1000
    assert len(_read(out / "mask_vs_similarity.csv")) >= 4


def test_missing_data_root_is_a_usage_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["evaluate", "--dataset", "esc50", "--data-root", str(tmp_path / "nope"), *BASE])
    assert r.exit_code == 2
    assert "esc50.csv" in r.output


def test_real_esc50_mini(esc50_mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    _run(["--dataset", "esc50", "--data-root", str(esc50_mini), "--method", "ones", "--max-samples", "6",
          "--out", str(out)])
    rows = _read(out / "samples.csv")
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)


def test_summary_bars_for_one_method_raise_no_warning(tmp_path: Path) -> None:
    """One method and one condition: matplotlib gets whiskers it can read without a numpy warning."""
    import warnings

    from PIL import Image

    from lmaczs_cli.render import render_summary_bars

    rows = [{"metric": m, "method": "lmaczs", "condition": "clean", "mean": v, "ci_low": v - 0.1,
             "ci_high": v + 0.2} for m, v in (("AI", 0.5), ("FF", 0.9))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = render_summary_bars(tmp_path / "s.png", rows)
    assert Image.open(path).size == (720, 300)  # 2 metrics side by side, 3.6 x 3.0 in at 100 dpi


def test_resume_redoes_rows_of_another_decoder(tmp_path: Path) -> None:
    """--resume skips a (clip, condition, method) only when its row came from the same model,
    checkpoint, decoder and mask domain: switching to the mel decoder redoes every row."""
    assert runner.invoke(app, ["synth", "--out", str(tmp_path / "s"), "--n", "3", "--seed", "5",
                               "--quiet"]).exit_code == 0
    base = ["evaluate", "--dataset", "synth", "--data-root", str(tmp_path / "s"), "--clap", "small",
            "--device", "cpu", "--method", "lmaczs", "--out", str(tmp_path / "e"), "--quiet"]
    assert runner.invoke(app, base).exit_code == 0
    assert {r["mask_domain"] for r in _read(tmp_path / "e" / "samples.csv")} == {"stft"}
    assert runner.invoke(app, [*base, "--resume", "--mask-domain", "mel"]).exit_code == 0
    rows = _read(tmp_path / "e" / "samples.csv")
    assert len(rows) == 3 and {r["mask_domain"] for r in rows} == {"mel"}
    assert runner.invoke(app, [*base, "--resume", "--mask-domain", "mel"]).exit_code == 0
    assert [r["run_id"] for r in _read(tmp_path / "e" / "samples.csv")] == [r["run_id"] for r in rows]
