"""A fusion CLAP explains and classifies a clip longer than its window as the model sees it (#28 item 3).

``--clap laion-htsat-tiny-fusion`` (random weights) and an HF fusion folder (``--clap hf:DIR``) on an
18 s clip: the similarity s in results.csv / classify.csv is the model-level ``encode_fused``
similarity of the whole clip, computed here independently; s~ that of the whole masked clip; the
mask and the WAV cover the whole clip; the crop rule and positions are in run.json. Offline.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.models.fusion import crop_starts
from lmaczs_cli.models.laion.fusion import LaionClapFused, build_htsat_tiny_fusion
from tests.helpers_hf import save_random_clap
from tests.helpers_laion import make_stub_tokenizer

runner = CliRunner()
SR = 48000
SECONDS = 18.0
PROMPT = "dog barking"
MODEL = ["--clap", "laion-htsat-tiny-fusion", "--clap-ckpt", "random"]


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_stub_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """18 s at the model's rate, float WAV (the CLI reads the very same samples)."""
    t = np.arange(int(SECONDS * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (t > 12) + 0.2 * np.sin(2 * np.pi * 1500 * t) * (t < 4)
    x = (x + 0.02 * np.random.default_rng(0).standard_normal(t.shape)).astype(np.float32)
    path = tmp_path_factory.mktemp("clip") / "long.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    return path, x


@pytest.fixture(scope="module")
def laion(tok: Path) -> LaionClapFused:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_htsat_tiny_fusion(ckpt="random", tokenizer_dir=tok, seed=0)


def _fused_similarity(model, x: np.ndarray, mask: np.ndarray | None = None) -> float:
    """s (or s~ with ``mask``) of the whole clip, straight from the model (no engine)."""
    wave = model.whole_clip_wave(torch.from_numpy(x))
    mag = model.spectrogram(wave[None])[0]
    if mask is not None:
        mag = mag * torch.from_numpy(mask)[None]
    with torch.no_grad():
        emb = model.encode_fused(mag).embedding[0]
    return float(emb @ model.embed_text([PROMPT])[0])


def test_explain_scores_the_whole_clip_with_the_fused_view(laion, tok, clip, tmp_path: Path) -> None:
    path, x = clip
    out = tmp_path / "run"
    r = runner.invoke(app, ["explain", str(path), *MODEL, "--tokenizer-dir", str(tok), "--prompt", PROMPT,
                            "--perclip-steps", "2", "--save-mask", "--no-maps", "--device", "cpu",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output[-2000:]
    (row,) = _rows(out / "results.csv")
    assert row["status"] == "ok" and row["method"] == "lmaczs-perclip"
    s = _fused_similarity(laion, x)
    assert abs(float(row["similarity"]) - s) <= 1e-5, (row["similarity"], s)
    # the window-by-window mean is another number: the fused view is what was scored
    windows = [laion.fit_window(torch.from_numpy(x[i : i + laion.window_samples])).wave for i in (0, 4 * SR)]
    with torch.no_grad():
        per_window = laion.encode(laion.spectrogram(torch.stack(windows))[0]).embedding
    assert abs(float((per_window @ laion.embed_text([PROMPT])[0]).mean()) - s) > 1e-4
    # the mask covers the whole clip, the WAV is as long as the clip, s~ is the whole masked clip's
    mask = np.load(row["mask"])
    frames = len(x) // laion.stft_config.hop_length + 1
    assert mask.shape == (laion.n_freqs, frames)
    assert sf.info(row["wav"]).frames == len(x)
    assert abs(float(row["masked_similarity"]) - _fused_similarity(laion, x, mask)) <= 1e-4
    # the crop rule and positions are recorded, and the run says what is fused and what is per window
    run = json.loads((out / "run.json").read_text())
    view = run["fusion"][str(path)]
    assert view["fusion_crop_starts"] == list(crop_starts(frames, laion.chunk_frames, "ends-centre"))
    assert view["fusion_rule"] == run["model"]["fusion_rule"] == "ends-centre"
    assert any("whole (feature fusion)" in w and "window by window" in w for w in run["warnings"])


def test_classify_ranks_a_long_clip_by_its_fused_view(laion, tok, clip, tmp_path: Path) -> None:
    path, x = clip
    out = tmp_path / "cls"
    r = runner.invoke(app, ["classify", str(path), *MODEL, "--tokenizer-dir", str(tok), "--prompt", PROMPT,
                            "--prompt", "siren", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output[-2000:]
    row = next(r for r in _rows(out / "classify.csv") if r["prompt"] == PROMPT)
    assert abs(float(row["similarity"]) - _fused_similarity(laion, x)) <= 1e-5
    assert str(path) in json.loads((out / "run.json").read_text())["fusion"]


@pytest.mark.slow
def test_an_hf_fusion_folder_is_scored_whole_too(clip, tmp_path: Path) -> None:
    from lmaczs_cli.models.registry import create_model

    path, x = clip
    folder = save_random_clap(tmp_path / "fused", fusion=True, seed=1)
    out = tmp_path / "hf"
    r = runner.invoke(app, ["baseline", "--method", "all-ones", str(path), "--clap", f"hf:{folder}",
                            "--prompt", PROMPT, "--no-maps", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output[-2000:]
    (row,) = _rows(out / "results.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(f"hf:{folder}")
    s = _fused_similarity(model, x)
    assert model.fuses_long_clips and abs(float(row["similarity"]) - s) <= 1e-5
    assert abs(float(row["masked_similarity"]) - s) <= 1e-5  # the all-ones mask keeps the whole clip
    assert json.loads((out / "run.json").read_text())["fusion"][str(path)]["fusion"] is True


def test_a_fusion_model_is_not_streamed(laion, clip) -> None:
    from lmaczs_cli.api import explain_to_folder, load_explainer
    from lmaczs_cli.streaming import is_long

    assert not is_long(clip[0], laion, min_windows=1)
    with pytest.raises(ValueError, match="sees a long clip whole"):
        explain_to_folder(load_explainer("all-ones", laion), clip[0], [PROMPT], "/nonexistent")
