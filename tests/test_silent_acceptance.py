"""Nothing is accepted silently: empty prompts, folders and selections are refused or failed,
and `train` says what it wrote and which folds it trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmaczs_cli.cli.app import app
from tests.fixtures_data import make_esc50
from tests.helpers_runs import FAKE, fake_decoder, read_rows, runner, tone


# -- silent acceptance ------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_refused(tmp_path: Path, prompt: str) -> None:
    r = runner.invoke(
        app,
        ["explain", str(tone(tmp_path / "c.wav")), "--prompt", prompt, *FAKE, "--out", str(tmp_path / "o")],
    )
    assert r.exit_code == 2 and "--prompt: empty prompt" in r.output and not (tmp_path / "o").exists()


def test_empty_folder_is_a_failed_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o"
    r = runner.invoke(
        app,
        [
            "explain",
            str(tmp_path / "empty"),
            str(tone(tmp_path / "c.wav")),
            "--prompt",
            "x",
            *FAKE,
            "--decoder",
            str(fake_decoder(tmp_path)),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 1 and "empty: folder holds no audio files" in r.output
    rows = read_rows(out / "results.csv")
    assert sorted(x["status"] for x in rows) == ["error", "ok"]
    r = runner.invoke(app, ["classify", str(tmp_path / "empty"), "--prompt", "x", *FAKE, "--out", str(out)])
    assert r.exit_code == 1 and "folder holds no audio files" in r.output


def test_a_selection_with_no_clips_is_refused(tmp_path: Path) -> None:
    from tests.fixtures_data import ESC50_ROWS

    root = make_esc50(tmp_path / "ESC-50", rows=[r for r in ESC50_ROWS if r[1] in (2, 3)])
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "esc50",
            "--data-root",
            str(root),
            "--folds",
            "1",
            *FAKE,
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 2 and "no clips selected with --folds 1" in r.output


# -- what train says it wrote; folds -----------------------------------------------------------
def test_train_says_what_it_wrote_and_keeps_folds_apart(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    out = tmp_path / "run"
    base = [
        "train",
        "--data",
        "esc50",
        "--data-root",
        str(root),
        "--clap",
        "fake",
        "--device",
        "cpu",
        "--width",
        "16",
        "--batch-size",
        "2",
        "--num-workers",
        "0",
        "--val-every",
        "2",
        "--out",
        str(out),
    ]
    r = runner.invoke(app, [*base, "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert "training on every fold of esc50" in r.stderr and "--exclude-folds" in r.stderr
    assert f"wrote {out / 'latest.pt'} and {out / 'best.pt'}" in r.stderr
    r = runner.invoke(app, [*base, "--steps", "4", "--max-steps", "3", "--resume"])
    assert r.exit_code == 0 and "wrote" in r.stderr
    held = tmp_path / "held"
    r = runner.invoke(app, [*base[:-1], str(held), "--steps", "2", "--exclude-folds", "5"])
    assert r.exit_code == 0 and "every fold" not in r.stderr, r.output
    ckpt = torch.load(held / "best.pt", weights_only=True)
    assert ckpt["training"][0]["data"] == "esc50" and ckpt["training"][0]["folds"] == [1, 2, 3, 4]
    # evaluating that decoder on a fold it was trained on says so; on the held-out fold it does not
    ev = [
        "evaluate",
        "--dataset",
        "esc50",
        "--data-root",
        str(root),
        "--method",
        "lmaczs",
        *FAKE,
        "--decoder",
        str(held / "best.pt"),
        "--quiet",
    ]
    r = runner.invoke(app, [*ev, "--folds", "4-5", "--out", str(tmp_path / "e1")])
    assert r.exit_code == 0 and "trained on esc50 fold(s) 4, which this run evaluates" in r.stderr
    r = runner.invoke(app, [*ev, "--folds", "5", "--out", str(tmp_path / "e2")])
    assert r.exit_code == 0 and "trained on" not in r.stderr
    r = runner.invoke(app, [*base, "--steps", "2", "--folds", "1-6", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "esc50 has folds 1-5" in r.output
