"""The command-line contract shared by every command: prompt templates, --labels synth,
result tables on stdout and log lines on stderr."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from tests.fixtures_data import make_esc50

runner = CliRunner()
SCENE = str(Path(__file__).resolve().parents[1] / "lmaczs_cli" / "assets" / "examples" / "scene.wav")


@pytest.mark.parametrize("template", ["a sound", "a {}", "{label} and {other}", "a {label"])
@pytest.mark.parametrize("cmd", ["evaluate", "sanity-check", "explain", "classify", "train"])
def test_a_template_without_label_is_refused_everywhere(tmp_path: Path, cmd: str, template: str) -> None:
    args = {
        "evaluate": ["--dataset", "esc50", "--data-root", str(tmp_path)],
        "sanity-check": ["--dataset", "esc50", "--data-root", str(tmp_path)],
        "explain": [SCENE, "--labels", "synth"],
        "classify": [SCENE, "--labels", "synth"],
        "train": ["--data", "synth"],
    }[cmd]
    out = tmp_path / "out"
    r = runner.invoke(app, [cmd, *args, "--prompt-template", template, "--clap", "small", "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "--prompt-template" in lines[0] and "{label}" in lines[0], r.output
    assert "Traceback" not in r.output and not out.exists()


def test_labels_synth_in_classify_and_explain(tmp_path: Path) -> None:
    r = runner.invoke(app, ["classify", SCENE, "--labels", "synth", "--clap", "small", "--top-k", "2",
                            "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    # the table is the result: it goes to stdout; the "wrote ..." line is a log line on stderr
    assert "bell" in r.stdout and "knock" in r.stdout and "wrote" not in r.stdout
    assert "wrote" in r.stderr
    with (tmp_path / "c" / "classify.csv").open() as f:
        top = [row["label"] for row in csv.DictReader(f)]
    assert set(top) == {"bell", "knock"}  # the bundled scene: a knock, then a bell
    r = runner.invoke(app, ["explain", SCENE, "--labels", "synth", "--top-k", "1", "--clap", "small",
                            "--out", str(tmp_path / "e"), "--quiet"])
    assert r.exit_code == 0, r.output
    with (tmp_path / "e" / "results.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["label"] in {"bell", "knock"} and row["prompt"] == f"this is a sound of {row['label']}"


@pytest.mark.slow
def test_labels_synth_in_evaluate_and_sanity_check(tmp_path: Path) -> None:
    data = tmp_path / "synth"
    r = runner.invoke(app, ["synth", "--out", str(data), "--n", "4", "--seed", "5", "--quiet"])
    assert r.exit_code == 0, r.output
    manifest = str(data / "manifest.csv")
    r = runner.invoke(app, ["evaluate", "--dataset", "manifest", "--data-root", manifest,
                            "--labels", "synth", "--clap", "small", "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    with (tmp_path / "ev" / "samples.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r_["correct"] in ("0", "1") for r_ in rows)  # labels found in the set
    assert "faithfulness" in r.stdout  # the summary table is on stdout
    r = runner.invoke(app, ["sanity-check", "--dataset", "manifest", "--data-root", manifest,
                            "--labels", "synth", "--clap", "small", "--max-samples", "2",
                            "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "lmaczs: passed the randomisation test" in r.stdout or "lmaczs: FAILED" in r.stdout


def test_unknown_labels_set_is_one_line(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    r = runner.invoke(app, ["evaluate", "--dataset", "esc50", "--data-root", str(root), "--labels", "nope",
                            "--clap", "small", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--labels nope: not a built-in set" in r.output
