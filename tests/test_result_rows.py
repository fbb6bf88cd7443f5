"""Results accumulate in one --out: later runs add or replace their rows (also under concurrent
runs, several methods, evaluate --resume), never duplicate them, and one file is one row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tests.test_explain  # noqa: F401  (registers the "ones" explainer)
from lmaczs_cli.cli.app import app
from tests.fixtures_data import make_esc50
from tests.helpers_runs import FAKE, REPO, part_files, read_rows, runner, tone


# -- results accumulate ------------------------------------------------------------------------
def test_runs_into_the_same_out_add_their_rows(tmp_path: Path) -> None:
    clips = [tone(tmp_path / f"c{i}.wav", freq=300 + 50 * i) for i in range(2)]
    out = tmp_path / "out"
    base = ["baseline", *map(str, clips), *FAKE, "--out", str(out), "--quiet"]
    assert runner.invoke(app, [*base, "--method", "gradcam", "--prompt", "beep"]).exit_code == 0
    assert runner.invoke(app, [*base, "--method", "gradcam++", "--prompt", "siren"]).exit_code == 0
    assert runner.invoke(app, [*base, "--method", "gradcam", "--prompt", "beep"]).exit_code == 0  # an update
    rows = read_rows(out / "results.csv")
    assert sorted((Path(x["clip"]).name, x["prompt"], x["method"]) for x in rows) == [
        ("c0.wav", "beep", "gradcam"),
        ("c0.wav", "siren", "gradcam++"),
        ("c1.wav", "beep", "gradcam"),
        ("c1.wav", "siren", "gradcam++"),
    ]


def test_a_failed_input_that_now_works_loses_its_error_row(tmp_path: Path) -> None:
    out = tmp_path / "out"
    clip = tmp_path / "c.wav"
    clip.write_text("not audio yet")
    args = [
        "baseline",
        "--method",
        "gradcam",
        str(clip),
        "--prompt",
        "beep",
        *FAKE,
        "--out",
        str(out),
        "--quiet",
    ]
    assert runner.invoke(app, args).exit_code == 1
    assert [x["status"] for x in read_rows(out / "results.csv")] == ["error"]
    tone(clip)
    assert runner.invoke(app, args).exit_code == 0
    assert [x["status"] for x in read_rows(out / "results.csv")] == ["ok"]


@pytest.mark.slow
def test_two_concurrent_runs_keep_every_row(tmp_path: Path) -> None:
    folders = []
    for k in range(2):
        d = tmp_path / f"set{k}"
        d.mkdir()
        for i in range(10):
            tone(d / f"k{k}_{i}.wav", freq=200 + 37 * i + 500 * k)
        folders.append(d)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fake_model",
                "baseline",
                "--method",
                "gradcam",
                str(d),
                "--prompt",
                "beep",
                *FAKE,
                "--out",
                str(out),
                "--quiet",
            ],
            env=env,
            cwd=REPO,
        )
        for d in folders
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rows = read_rows(out / "results.csv")
    assert len(rows) == 20 and len({x["clip"] for x in rows}) == 20
    assert not part_files(out)


# -- several baseline methods in one run -------------------------------------------------------
def test_baseline_runs_every_method_given(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        [
            "baseline",
            "--method",
            "gradcam",
            "--method",
            "ig",
            "--ig-steps",
            "3",
            str(tone(tmp_path / "c.wav")),
            "--prompt",
            "beep",
            *FAKE,
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sorted(x["method"] for x in read_rows(out / "results.csv")) == ["gradcam", "ig"]
    r = runner.invoke(app, ["baseline", "--method", "lmaczs", str(tmp_path / "c.wav"), "-p", "x", *FAKE])
    assert r.exit_code == 2 and "--method 'lmaczs': expected one of gradcam" in r.output


# -- evaluate --resume is idempotent -----------------------------------------------------------
def test_evaluate_resume_adds_no_rows(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    bad = sorted((root / "audio").iterdir())[0]
    bad.write_text("corrupt")
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--dataset",
        "esc50",
        "--data-root",
        str(root),
        "--method",
        "ones",
        *FAKE,
        "--out",
        str(out),
        "--quiet",
    ]
    assert runner.invoke(app, args).exit_code == 1
    first = read_rows(out / "samples.csv")
    for _ in range(2):
        assert runner.invoke(app, [*args, "--resume"]).exit_code == 1
    again = read_rows(out / "samples.csv")
    assert len(again) == len(first) == 10 and sum(x["status"] == "error" for x in again) == 1
    # another method into the same folder adds its rows; the summary covers both
    assert runner.invoke(app, [*args[:6], "gradcam", *args[7:]]).exit_code == 1
    rows = read_rows(out / "samples.csv")
    assert len([x for x in rows if x["status"] == "ok"]) == 18
    assert {x["method"] for x in read_rows(out / "summary.csv")} == {"ones", "gradcam"}


def test_one_file_named_two_ways_is_one_row(tmp_path: Path, monkeypatch) -> None:
    """A clip given by absolute path, then relative to the working folder, then through a link:
    one file, one folder, one row per (prompt, method) - the later run replaces the earlier."""
    clip = tone(tmp_path / "c.wav")
    (tmp_path / "link.wav").symlink_to(clip)
    out = tmp_path / "out"
    base = [*FAKE, "--method", "gradcam", "--prompt", "beep", "--out", str(out), "--quiet"]
    assert runner.invoke(app, ["baseline", str(clip), *base]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["baseline", "c.wav", *base]).exit_code == 0
    assert runner.invoke(app, ["baseline", "link.wav", *base]).exit_code == 0
    rows = read_rows(out / "results.csv")
    assert [x["clip"] for x in rows] == [str(clip.resolve())]
    assert Path(rows[0]["wav"]).is_file()
