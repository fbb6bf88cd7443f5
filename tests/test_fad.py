"""`lmaczs fad`: Fréchet distance between two folders' embeddings (fake model)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli.cli.app import app

runner = CliRunner()


def _folder(root: Path, freqs: list[float], noise: float) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(int(noise * 100))
    t = np.arange(8000) / 8000
    for i, f in enumerate(freqs):
        x = 0.3 * np.sin(2 * np.pi * f * t) + noise * rng.standard_normal(8000)
        sf.write(root / f"c{i}.wav", x.astype(np.float32), 8000)
    return root


def _fad(a: Path, b: Path, out: Path) -> float:
    r = runner.invoke(app, ["fad", str(a), str(b), "--clap", "fake", "--device", "cpu", "--out", str(out),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    with (out / "fad.csv").open() as f:
        return float(next(csv.DictReader(f))["frechet_distance"])


def test_same_set_is_zero_and_a_shifted_set_is_not(tmp_path: Path) -> None:
    tones = _folder(tmp_path / "tones", [200, 300, 400, 500, 600, 700], 0.0)
    noisy = _folder(tmp_path / "noisy", [200, 300, 400, 500, 600, 700], 0.3)
    same = _fad(tones, tones, tmp_path / "o1")
    diff = _fad(tones, noisy, tmp_path / "o2")
    assert abs(same) < 1e-6 and diff > 1e-3


def test_bad_set_is_a_usage_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["fad", str(tmp_path / "nope"), str(tmp_path), "--clap", "fake", "--quiet"])
    assert r.exit_code == 2 and "not a folder" in r.output
