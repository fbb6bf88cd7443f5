"""ms-clap-2022 (the paper's model) through the CLI, end to end, offline with random weights:
train a decoder for 2 steps on a tiny ESC-50-layout set, explain with it, classify, and run the
cascading-randomisation sanity check over CNN14's six conv blocks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from tests.fixtures_data import ESC50_ROWS, make_esc50

pytestmark = pytest.mark.filterwarnings("ignore:ms-clap-2022. using RANDOM weights")
MODEL = ["--clap", "ms-clap-2022", "--clap-ckpt", "random", "--device", "cpu", "--seed", "0"]


def _invoke(args: list[str]):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output[-3000:]
    return res


@pytest.fixture(scope="module")
def esc50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_esc50(tmp_path_factory.mktemp("esc50"))


@pytest.fixture(scope="module")
def decoder(esc50: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train")
    _invoke(["train", *MODEL, "--data", "esc50", "--data-root", str(esc50), "--steps", "2",
             "--batch-size", "2", "--val-every", "0", "--val-size", "2", "--num-workers", "0",
             "--out", str(out), "-q"])
    return out / "best.pt"


@pytest.mark.slow
def test_train_writes_a_decoder_for_the_model(decoder: Path) -> None:
    run = decoder.parent
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["clap"] == "ms-clap-2022" and decoder.is_file() and (run / "latest.pt").is_file()
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"][-1] == 2
    val = [e for e in events if e["event"] == "val"][-1]
    assert 0.0 < val["mask_mean"] < 1.0


@pytest.mark.slow
def test_explain_and_classify_with_the_trained_decoder(esc50: Path, decoder: Path,
                                                       tmp_path: Path) -> None:
    clip = esc50 / "audio" / ESC50_ROWS[0][0]
    _invoke(["explain", str(clip), *MODEL, "--decoder", str(decoder), "--labels", "esc50",
             "--top-k", "2", "--residual", "--out", str(tmp_path / "ex"), "-q"])
    rows = list(csv.DictReader((tmp_path / "ex" / "results.csv").open()))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    wavs = sorted((tmp_path / "ex").rglob("explanation.wav"))
    assert len(wavs) == 2 and len(sorted((tmp_path / "ex").rglob("residual.wav"))) == 2
    info = sf.info(str(wavs[0]))
    assert info.samplerate == 44100 and info.frames == sf.info(str(clip)).frames
    res = _invoke(["classify", str(clip), *MODEL, "--labels", "esc50", "--top-k", "3", "--json",
                   "--out", str(tmp_path / "cls"), "-q"])
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) >= 1


@pytest.mark.slow
def test_sanity_check_randomises_the_six_conv_blocks(esc50: Path, decoder: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "sanity"
    _invoke(["sanity-check", "--dataset", "esc50", "--data-root", str(esc50), *MODEL,
             "--decoder", str(decoder), "--method", "lmaczs", "--max-samples", "2",
             "--wrong-prompts", "1", "--batch-size", "2", "--out", str(out), "-q"])
    rows = [r for r in csv.DictReader((out / "ssim.csv").open()) if r["metric"] == "ssim"]
    steps = sorted({(int(r["step"]), r["block"]) for r in rows if r["method"] == "lmaczs"})
    conv = [f"audio_encoder.base.conv_block{i}" for i in range(6, 0, -1)]  # top down
    assert [b for _, b in steps] == ["none", "audio_encoder.projection", "audio_encoder.base.fc1",
                                    *conv]
    ssim = {(r["method"], r["block"]): float(r["mean"]) for r in rows}
    assert ssim[("lmaczs", "none")] == pytest.approx(1.0)
    # randomising every conv block changes what the decoder reads, hence its masks
    assert ssim[("lmaczs", conv[-1])] < 0.999
