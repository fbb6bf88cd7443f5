"""Hugging Face CLAP end to end through the CLI: a ``save_pretrained`` folder (``--clap hf:DIR``)
and the offline random ``hf-htsat-tiny`` run every command; ``classify`` ranks like
transformers' own ``pipeline("zero-shot-audio-classification")``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.data.prompts import load_labels
from tests.fixtures_data import make_esc50
from tests.helpers_hf import save_random_clap
from tests.helpers_laion import make_signals

pytestmark = pytest.mark.slow
runner = CliRunner()
CPU = ["--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's fine-tuned model: ClapModel + ClapProcessor written by save_pretrained."""
    return save_random_clap(tmp_path_factory.mktemp("ft") / "my-finetuned-clap", seed=0)


@pytest.fixture(scope="module")
def esc50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_esc50(tmp_path_factory.mktemp("data") / "ESC-50")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 48 kHz (the model's rate: both sides read the very same samples)."""
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, make_signals()["3s"], 48000, subtype="FLOAT")
    return path


def _ok(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, f"{args[0]}: {r.output[-2000:]}"
    return r.output


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_command_runs_on_a_saved_folder(folder: Path, esc50: Path, clip: Path,
                                              tmp_path: Path) -> None:
    model = ["--clap", f"hf:{folder}", *CPU]
    train = tmp_path / "train"
    _ok(["train", "--data", "esc50", "--data-root", str(esc50), "--steps", "2", "--val-every", "2",
         "--val-size", "2", "--batch-size", "2", "--num-workers", "0", "--width", "16",
         "--out", str(train), *model])
    decoder = train / "best.pt"
    spec = torch.load(decoder, weights_only=True)["spec_id"]
    assert spec["model"] == f"hf:{folder}" and spec["n_frames"] == 1001
    _ok(["explain", str(clip), "--prompt", "dog barking", "--prompt", "rain", "--decoder", str(decoder),
         "--save-mask", "--out", str(tmp_path / "ex"), *model])
    rows = _rows(tmp_path / "ex" / "results.csv")
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    mask = np.load(next((tmp_path / "ex").rglob("*.npy")))
    assert mask.shape[0] == 513 and 0 <= mask.min() and mask.max() <= 1
    _ok(["baseline", str(clip), "--method", "gradcam", "--prompt", "dog barking",
         "--out", str(tmp_path / "gc"), *model])
    _ok(["evaluate", "--dataset", "esc50", "--data-root", str(esc50), "--max-samples", "2",
         "--method", "lmaczs", "--method", "gradcam", "--decoder", str(decoder),
         "--out", str(tmp_path / "ev"), *model])
    assert {r["method"] for r in _rows(tmp_path / "ev" / "samples.csv")} == {"lmaczs", "gradcam"}
    _ok(["sanity-check", "--dataset", "esc50", "--data-root", str(esc50), "--max-samples", "1",
         "--method", "gradcam", "--wrong-prompts", "1", "--out", str(tmp_path / "sc"), *model])
    _ok(["classify", str(clip), "--labels", "esc50", "--out", str(tmp_path / "cl"), *model])
    _ok(["fad", str(esc50 / "audio"), str(tmp_path / "ex"), "--out", str(tmp_path / "fad"), *model])
    # a decoder follows its model: the random hf-htsat-tiny refuses it
    r = runner.invoke(app, ["explain", str(clip), "--prompt", "rain", "--decoder", str(decoder),
                            "--clap", "hf-htsat-tiny", "--clap-ckpt", "random", "--out",
                            str(tmp_path / "x"), *CPU])
    assert r.exit_code == 2 and f"decoder was trained for model 'hf:{folder}'" in r.output


def test_random_named_model_runs_offline(esc50: Path, clip: Path, tmp_path: Path) -> None:
    model = ["--clap", "hf-htsat-tiny", "--clap-ckpt", "random", *CPU]
    train = tmp_path / "train"
    _ok(["train", "--data", "esc50", "--data-root", str(esc50), "--steps", "1", "--val-every", "1",
         "--val-size", "2", "--batch-size", "2", "--num-workers", "0", "--width", "16",
         "--out", str(train), *model])
    _ok(["explain", str(clip), "--prompt", "dog barking", "--decoder", str(train / "best.pt"),
         "--out", str(tmp_path / "ex"), *model])
    _ok(["baseline", str(clip), "--method", "gradcam++", "--prompt", "dog barking",
         "--out", str(tmp_path / "gc"), *model])


def test_classify_ranks_like_the_transformers_pipeline(folder: Path, clip: Path, tmp_path: Path) -> None:
    """Done-when of issue #17: same top-5 (and scores) as pipeline(...) on the same folder,
    same labels, template "this is a sound of {}" (lmaczs' default "this is a sound of {label}")."""
    from transformers import pipeline

    _ok(["classify", str(clip), "--labels", "esc50", "--top-k", "5", "--clap", f"hf:{folder}",
         "--out", str(tmp_path / "cl"), *CPU])
    ours = _rows(tmp_path / "cl" / "classify.csv")
    labels = load_labels("esc50")
    classifier = pipeline("zero-shot-audio-classification", model=str(folder), device="cpu")
    audio, sr = sf.read(clip, dtype="float32")
    assert sr == classifier.feature_extractor.sampling_rate
    theirs = classifier(audio, candidate_labels=labels, hypothesis_template="this is a sound of {}")
    print("top-5 lmaczs:", [r["label"] for r in ours])
    print("top-5 pipeline:", [r["label"] for r in theirs[:5]])
    assert [r["label"] for r in ours] == [r["label"] for r in theirs[:5]]
    for mine, ref in zip(ours, theirs, strict=False):
        assert float(mine["probability"]) == pytest.approx(ref["score"], rel=1e-5)
    # the ranking is not a tie that any order would satisfy
    scores = [r["score"] for r in theirs[:6]]
    assert all(a - b > 1e-6 * a for a, b in zip(scores, scores[1:], strict=False))
