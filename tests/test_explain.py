"""`lmaczs explain` / `baseline` end to end on the tiny fake model: files a user would open."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli.cli.app import app
from lmaczs_cli.explainers.base import Explainer, register_explainer
from lmaczs_cli.jobs.explain import ExplainConfig, run_explain
from lmaczs_cli.render import MAP_SIZE
from lmaczs_cli.runtime import RunOptions

runner = CliRunner()


class Ones(Explainer):
    """An explainer whose mask keeps everything (the invariant every pipeline must honour)."""

    name = "ones"

    def compute_masks(self, model, magnitude, text, encoded=None):
        return torch.ones_like(magnitude)


class Energy(Explainer):
    """Mask = the window's own normalised magnitude (depends on content, continuous in time)."""

    name = "energy"

    def compute_masks(self, model, magnitude, text, encoded=None):
        m = magnitude / magnitude.flatten(1).amax(1)[:, None, None].clamp_min(1e-8)
        return m.sqrt()


def build_ones(model):
    return Ones()


def build_energy(model):
    return Energy()


register_explainer("ones", "tests.test_explain:build_ones")
register_explainer("energy", "tests.test_explain:build_energy")


def _tone(path: Path, sr: int, seconds: float, freq: float = 440.0, stereo: bool = False) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.sin(2 * np.pi * 3 * freq * t)).astype(np.float32)
    sf.write(path, np.stack([x, x], 1) if stereo else x, sr, subtype="FLOAT")
    return path


def _rows(out: Path) -> list[dict]:
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def _opts(inputs, out, method="ones", **kw) -> ExplainConfig:
    return ExplainConfig(inputs=list(inputs), out=out, methods=[method],
                         run=RunOptions(clap="fake", device="cpu"), prompt=kw.pop("prompt", ["a beep"]), **kw)


def test_all_ones_mask_gives_back_the_input_and_the_similarity(tmp_path: Path) -> None:
    clip = _tone(tmp_path / "clip.wav", 8000, 0.8)
    out = tmp_path / "out"
    assert run_explain(_opts([clip], out, save_mask=True)).failed == 0
    (row,) = _rows(out)
    assert row["status"] == "ok" and row["method"] == "ones"
    assert float(row["masked_similarity"]) == pytest.approx(float(row["similarity"]), abs=1e-5)
    assert float(row["mask_mean"]) == 1.0
    y, sr = sf.read(row["wav"], dtype="float32")
    x, _ = sf.read(clip, dtype="float32")
    assert sr == 8000 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < 1e-5
    img = Image.open(row["png"])
    assert img.size == MAP_SIZE and img.format == "PNG"
    mask = np.load(row["mask"])
    assert mask.shape == (129, int(0.8 * 8000) // 64 + 1)


def test_explanation_keeps_the_original_rate_and_length(tmp_path: Path) -> None:
    clip = _tone(tmp_path / "hi.wav", 22050, 1.37, stereo=True)
    out = tmp_path / "out"
    assert run_explain(_opts([clip], out, method="energy", residual=True)).failed == 0
    (row,) = _rows(out)
    info = sf.info(row["wav"])
    assert info.samplerate == 22050 and info.frames == sf.info(clip).frames
    y, _ = sf.read(row["wav"])
    r, _ = sf.read(row["residual_wav"])
    assert np.isfinite(y).all() and 0 < np.abs(y).max() < 1.5
    # explanation + residual rebuild the (band-limited) clip: masks m and 1 - m sum to one
    x8k = sf.read(clip)[0].mean(1)
    assert np.corrcoef(y + r, x8k)[0, 1] > 0.99


def test_long_clip_is_stitched_to_full_length(tmp_path: Path) -> None:
    clip = _tone(tmp_path / "long.wav", 8000, 3.3, freq=300.0)
    out = tmp_path / "out"
    assert run_explain(_opts([clip], out, method="energy", save_mask=True)).failed == 0
    (row,) = _rows(out)
    mask = np.load(row["mask"])
    assert mask.shape == (129, int(3.3 * 8000) // 64 + 1)
    # a steady tone gives the same mask in every window: no seams where windows join
    band = mask[:, 20:-20]
    assert np.abs(np.diff(band, axis=1)).max() < 0.05
    assert sf.info(row["wav"]).frames == int(3.3 * 8000)


def test_folder_with_bad_files_reports_them_and_exits_1(tmp_path: Path) -> None:
    d = tmp_path / "clips"
    d.mkdir()
    for i in range(3):
        _tone(d / f"good{i}.wav", 8000, 0.5, freq=200.0 + 100 * i)
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("not audio at all\n" * 20)
    out = tmp_path / "out"
    r = runner.invoke(app, ["baseline", "--method", "gradcam", str(d), "--prompt", "a beep", "--clap", "fake",
                            "--device", "cpu", "--out", str(out), "--quiet"])
    assert r.exit_code == 1, r.output
    rows = _rows(out)
    ok = [x for x in rows if x["status"] == "ok"]
    bad = [x for x in rows if x["status"] == "error"]
    assert len(ok) == 3 and len(bad) == 2
    assert {Path(x["clip"]).name for x in bad} == {"empty.wav", "text.wav"}
    assert any("empty file (0 bytes)" in x["error"] for x in bad)
    assert all(Path(x["wav"]).exists() and Path(x["png"]).exists() for x in ok)
    assert "empty.wav: empty file" in r.output and "2 of 5 inputs failed" in r.output


def test_hostile_prompts_stay_inside_out(tmp_path: Path) -> None:
    clip = _tone(tmp_path / "c.wav", 8000, 0.5)
    out = tmp_path / "out"
    prompts = ["../../x", "a/b\\c", "🐶 dog 🐶", "y" * 300, ".hidden"]
    assert run_explain(_opts([clip], out, prompt=prompts)).failed == 0
    rows = _rows(out)
    assert len(rows) == len(prompts)
    root = out.resolve()
    for row in rows:
        for key in ("wav", "png"):
            p = Path(row[key]).resolve()
            assert root in p.parents
            assert all(len(part) < 120 for part in p.relative_to(root).parts)
    assert not (tmp_path / "x").exists()
    assert len({Path(r["wav"]).parent for r in rows}) == len(prompts)


def test_top_k_explains_what_the_model_ranks_highest(tmp_path: Path) -> None:
    clip = _tone(tmp_path / "c.wav", 8000, 0.5)
    labels = tmp_path / "labels.txt"
    labels.write_text("dog\ncat\nsiren\nrain\nbell\n")
    out = tmp_path / "out"
    assert run_explain(_opts([clip], out, prompt=None, labels=str(labels), top_k=2)).failed == 0
    rows = _rows(out)
    r = runner.invoke(app, ["classify", str(clip), "--labels", str(labels), "--clap", "fake", "--device",
                            "cpu", "--top-k", "2", "--out", str(tmp_path / "cls"), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    top = [json.loads(line)["label"] for line in r.stdout.splitlines()]
    assert [x["label"] for x in sorted(rows, key=lambda x: int(x["rank"]))] == top


def test_resume_skips_finished_pairs(tmp_path: Path) -> None:
    clips = [_tone(tmp_path / f"c{i}.wav", 8000, 0.5, 300.0 + 50 * i) for i in range(2)]
    out = tmp_path / "out"
    assert run_explain(_opts(clips[:1], out)).failed == 0
    first = _rows(out)[0]
    mtime = Path(first["wav"]).stat().st_mtime_ns
    assert run_explain(_opts(clips, out, resume=True)).failed == 0
    rows = _rows(out)
    assert len(rows) == 2 and {Path(r["clip"]).name for r in rows} == {"c0.wav", "c1.wav"}
    assert Path(first["wav"]).stat().st_mtime_ns == mtime  # not redone


def test_json_lines_and_no_partial_files(tmp_path: Path) -> None:
    clip = _tone(tmp_path / "c.wav", 8000, 0.5)
    out = tmp_path / "out"
    r = runner.invoke(app, ["baseline", "--method", "ig", "--ig-steps", "4", str(clip), "-p", "beep",
                            "-p", "rain", "--clap", "fake", "--device", "cpu", "--out", str(out), "--json",
                            "--quiet"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["prompt"] for x in lines] and {x["method"] for x in lines} == {"ig"}
    assert not [p for p in out.rglob("*") if ".part" in p.name]


def test_resume_redoes_pairs_made_another_way(tmp_path: Path) -> None:
    """--resume skips a pair only when the row on disk was made as this run would make it:
    asking for residuals now (or another decoder, checkpoint, mask domain) redoes it."""
    clip = _tone(tmp_path / "c.wav", 8000, 0.5)
    out = tmp_path / "out"
    assert run_explain(_opts([clip], out)).failed == 0
    assert not _rows(out)[0]["residual_wav"]
    again = run_explain(_opts([clip], out, resume=True, residual=True))
    (row,) = _rows(out)
    assert len(again.rows) == 1 and row["residual_wav"] and Path(row["residual_wav"]).is_file()
    mtime = Path(row["wav"]).stat().st_mtime_ns
    run_explain(_opts([clip], out, resume=True, residual=True))  # now it is the same: skipped
    assert Path(_rows(out)[0]["wav"]).stat().st_mtime_ns == mtime
