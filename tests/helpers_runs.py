"""Shared by the tests that run whole commands on small inputs (test_outdir_safety.py,
test_result_rows.py, test_batch_errors.py, test_silent_acceptance.py, test_reproducibility.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
FAKE = ["--clap", "fake", "--device", "cpu"]


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file as dicts."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def tone(path: Path, sr: int = 8000, seconds: float = 0.5, freq: float = 440.0) -> Path:
    """Write a sine tone (float WAV) at ``path``."""
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="FLOAT")
    return path


def part_files(out: Path) -> list[Path]:
    """Temp files (``.part``) left anywhere under ``out``."""
    return [p for p in out.rglob("*") if ".part" in p.name]


def fake_decoder(folder: Path) -> Path:
    """A small untrained decoder checkpoint for the fake model, saved in ``folder``."""
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.explainers.decoder import MaskDecoder
    from tests.fake_model import FakeModel

    m = FakeModel()
    path = folder / "fake-decoder.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(m, width=16), m.spec_id()))
    return path
