"""Explainers own their identity (issue #28 item 4): the settings that define their masks are
recorded in run.json and in every result row (``method_options``), and ``--resume`` compares
them; GradCAM builds its CAM object once per explainer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli.cli.app import app
from lmaczs_cli.explainers.base import Explainer, create_explainer, identity_string, identity_value
from lmaczs_cli.provenance import RunRecord
from tests.fake_model import FakeModel

runner = CliRunner()


def _tone(path: Path, freq: float = 440.0) -> Path:
    t = np.arange(4000) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000, subtype="FLOAT")
    return path


def _rows(out: Path) -> list[dict]:
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def _baseline(clip: Path, out: Path, *extra: str) -> str:
    r = runner.invoke(app, ["baseline", "--method", "ig", *extra, str(clip), "-p", "a beep", "--clap", "fake",
                            "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return r.output


def test_resume_recomputes_ig_with_other_steps(tmp_path: Path) -> None:
    clip, out = _tone(tmp_path / "c.wav"), tmp_path / "out"
    _baseline(clip, out, "--ig-steps", "50")
    (first,) = _rows(out)
    assert json.loads(first["method_options"]) == {"steps": "50", "baseline": "0.0"}
    mtime = Path(first["wav"]).stat().st_mtime_ns

    said = _baseline(clip, out, "--ig-steps", "20", "--resume")  # other steps: not the same rows
    (row,) = _rows(out)
    assert "already done" not in said
    assert json.loads(row["method_options"])["steps"] == "20" and row["run_id"] != first["run_id"]
    assert Path(row["wav"]).stat().st_mtime_ns != mtime
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["ig"]["identity"] == {"steps": "20", "baseline": "0.0"}

    mtime = Path(row["wav"]).stat().st_mtime_ns
    said = _baseline(clip, out, "--ig-steps", "20", "--resume")  # the same settings: skipped
    assert "1 clips already done" in said
    assert _rows(out)[0]["run_id"] == row["run_id"] and Path(row["wav"]).stat().st_mtime_ns == mtime


def test_rows_without_the_column_are_redone_only_for_methods_with_an_identity(tmp_path: Path) -> None:
    """A results.csv written before rows carried ``method_options``: IG's rows are redone once
    (their settings are unknown), GradCAM's (no settings) still count as done."""
    model = FakeModel()
    ig, cam = create_explainer("ig", model, steps=50), create_explainer("gradcam", model)
    record = RunRecord("baseline", model, {"ig": ig, "gradcam": cam})
    old = {k: v for k, v in record.row_fields("ig").items() if k != "method_options"}
    ig_options = record.row_fields("ig")["method_options"]
    assert record.made_alike({**old, "method": "ig", "method_options": ig_options})
    assert not record.made_alike({**old, "method": "ig"})
    assert record.made_alike({**record.row_fields("gradcam"), "method": "gradcam", "method_options": ""})
    assert record.row_fields("gradcam")["method_options"] is None


def test_every_registered_explainer_says_what_defines_its_masks() -> None:
    model = FakeModel()
    want = {
        "ig": {"steps": "50", "baseline": "0.0"},
        "smoothgrad": {"samples": "25", "noise": "0.15"},
        "gradcam": {}, "gradcam++": {}, "all-ones": {}, "empty": {},
        "random-rectangle": {"seed": "0", "lo": "0.1", "hi": "0.6"},
        "sliding-window": {"window": "1.0", "hop": "0.25"},
    }
    for name, identity in want.items():
        assert create_explainer(name, model).identity() == identity, name
    assert create_explainer("ig", model, steps=20).identity()["steps"] == "20"
    assert create_explainer("smoothgrad", model, samples=10, noise=0.2).identity() == {"samples": "10",
                                                                                       "noise": "0.2"}
    assert create_explainer("random-rectangle", model, seed=4).identity()["seed"] == "4"
    perclip = create_explainer("lmaczs-perclip", model, steps=30, lr=0.05).identity()
    assert (perclip["steps"], perclip["lr"], perclip["grid"], perclip["seed"]) == ("30", "0.05", "16x32", "0")
    assert "weights" in perclip and "chunk" not in perclip


def test_lmaczs_identity_is_its_decoder_digest_and_domain(tmp_path: Path) -> None:
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.explainers.decoder import MaskDecoder
    from lmaczs_cli.provenance import file_sha256

    model = FakeModel()
    path = tmp_path / "dec.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(model, "stft", width=8), model.spec_id()))
    ex = create_explainer("lmaczs", model, decoder=str(path))
    assert ex.identity() == {"domain": "stft", "decoder_sha256": file_sha256(path)}
    record = RunRecord("explain", model, {"lmaczs": ex})
    assert record.data["methods"]["lmaczs"]["identity"]["decoder_sha256"] == file_sha256(path)


def test_identity_strings_are_canonical() -> None:
    assert identity_value(50) == "50" and identity_value(0.15) == "0.15" and identity_value(1) == "1"
    assert identity_value((16, 32)) == "16x32" and identity_value(True) == "true"
    assert identity_string({}) == "" and identity_string(None) == ""
    canonical = '{"a":"1","b":"2"}'
    assert identity_string({"b": "2", "a": "1"}) == canonical == identity_string({"a": "1", "b": "2"})


def test_an_explainer_without_identity_has_none() -> None:
    class Plain(Explainer):
        def compute_masks(self, model, magnitude, text, encoded=None):
            return torch.ones_like(magnitude)

    assert Plain().identity() == {}


def test_gradcam_builds_its_cam_once_and_gives_the_same_masks() -> None:
    model = FakeModel()
    mag = torch.rand(2, model.n_freqs, model.n_frames, generator=torch.Generator().manual_seed(0))
    text = model.embed_text(["a beep", "rain"])
    for name in ("gradcam", "gradcam++"):
        ex = create_explainer(name, model)
        cam = ex._cam
        assert cam is not None  # built when the explainer is bound to its model
        first = ex.masks(model, mag, text)
        second = ex.masks(None, mag, text)  # None: the bound model
        assert ex._cam is cam
        assert torch.equal(first, second)
        fresh = create_explainer(name, model).masks(model, mag, text)
        assert torch.equal(first, fresh)
        layer, _ = model.gradcam_target()
        assert not layer._forward_hooks  # no hooks left on the model between calls
        # each call explains its own prompts (the reused CAM does not keep the last ones)
        other = ex.masks(model, mag[:1], text[1:])
        assert torch.equal(other, create_explainer(name, model).masks(model, mag[:1], text[1:]))
