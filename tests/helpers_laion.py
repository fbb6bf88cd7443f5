"""Fixtures for LAION-CLAP tests: a stub roberta tokenizer and deterministic clips.

Nothing here touches the network. The package's own reference path lives in
:mod:`lmaczs_cli.models.laion.reference` (re-exported here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmaczs_cli.models.laion.reference import package_module, package_reference
from lmaczs_cli.models.stub_tokenizer import write_stub_files

__all__ = ["make_signals", "make_stub_tokenizer", "package_module", "package_reference"]


def make_stub_tokenizer(folder: Path) -> Path:
    """A tiny byte-level BPE ``vocab.json`` + ``merges.txt`` that RobertaTokenizer accepts."""
    return write_stub_files(folder)


def make_signals(sr: int = 48000, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic clips: 10 s, 3 s and 25 s, tones + chirp + noise bursts."""
    rng = np.random.default_rng(seed)

    def clip(seconds: float) -> np.ndarray:
        t = np.arange(int(seconds * sr)) / sr
        x = 0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t)
        x += 0.2 * np.sin(2 * np.pi * 2500 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)
        x += 0.1 * rng.standard_normal(t.shape) * (np.sin(2 * np.pi * 0.3 * t + 1) > 0.5)
        return x.astype(np.float32)

    return {"10s": clip(10.0), "3s": clip(3.0), "25s": clip(25.0)}
