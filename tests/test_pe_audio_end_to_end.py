"""PE-Audio end to end through the CLI on a ``save_pretrained`` folder (``--clap pe-audio:DIR``,
small random config of the real layout): train, explain (decoder and per-clip), baseline
(GradCAM), evaluate, sanity-check, classify and fad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.fixtures_data import make_esc50
from tests.helpers_laion import make_signals
from tests.helpers_pe_audio import save_random_pe_audio
from tests.test_hf_end_to_end import _ok, _rows

pytestmark = pytest.mark.slow
CPU = ["--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_pe_audio(tmp_path_factory.mktemp("pe") / "my-pe-audio", seed=0)


@pytest.fixture(scope="module")
def esc50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_esc50(tmp_path_factory.mktemp("data") / "ESC-50")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(path, make_signals()["3s"], 48000, subtype="FLOAT")
    return path


def test_every_command_runs_on_a_saved_folder(folder: Path, esc50: Path, clip: Path, tmp_path: Path) -> None:
    model = ["--clap", f"pe-audio:{folder}", *CPU]
    train = tmp_path / "train"
    _ok(["train", "--data", "esc50", "--data-root", str(esc50), "--steps", "2", "--val-every", "2",
         "--val-size", "2", "--batch-size", "2", "--num-workers", "0", "--width", "16",
         "--out", str(train), *model])
    decoder = train / "best.pt"
    spec = torch.load(decoder, weights_only=True)["spec_id"]
    assert spec["model"] == f"pe-audio:{folder}" and spec["n_frames"] == 1001
    _ok(["explain", str(clip), "--prompt", "dog barking", "--prompt", "rain", "--decoder", str(decoder),
         "--save-mask", "--out", str(tmp_path / "ex"), *model])
    rows = _rows(tmp_path / "ex" / "results.csv")
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    mask = np.load(next((tmp_path / "ex").rglob("*.npy")))
    assert mask.shape[0] == 513 and 0 <= mask.min() and mask.max() <= 1
    _ok(["explain", str(clip), "--prompt", "x", "--perclip-steps", "2",  # no decoder: per clip
         "--out", str(tmp_path / "pc"), *model])
    assert _rows(tmp_path / "pc" / "results.csv")[0]["status"] == "ok"
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
