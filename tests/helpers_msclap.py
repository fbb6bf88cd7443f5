"""Fixtures for MS-CLAP tests: a stub GPT-2 tokenizer and deterministic WAV clips.

Nothing here touches the network. The package's own reference path lives in
:mod:`lmaczs_cli.models.msclap.reference`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from lmaczs_cli.models.stub_tokenizer import WORDS, bytes_to_unicode

GPT2_END = "<|endoftext|>"


def make_gpt2_stub_tokenizer(folder: Path) -> Path:
    """A tiny byte-level BPE ``vocab.json`` + ``merges.txt`` laid out like GPT-2's:
    the 256 byte symbols first (so ``"!"`` is id 0, MS-CLAP's pad), ``<|endoftext|>`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    merges: list[str] = []
    for word in WORDS:
        for w in (word, "Ġ" + word):
            cur = w[0]
            for ch in w[1:]:
                merges.append(f"{cur} {ch}")
                cur += ch
                vocab.setdefault(cur, len(vocab))
    vocab[GPT2_END] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    merges = list(dict.fromkeys(merges))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def clip(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Tones + chirp + gated noise, float32 mono."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (300 + 200 * t) * t)
    x += 0.2 * np.sin(2 * np.pi * 2500 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)
    x += 0.1 * rng.standard_normal(t.shape) * (np.sin(2 * np.pi * 0.3 * t + 1) > 0.5)
    return x.astype(np.float32)


def write_clips(folder: Path, cases: dict[str, tuple[float, int]]) -> dict[str, Path]:
    """``name -> (seconds, sample rate)`` written as float WAVs (exact round trip)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, (seconds, sr)) in enumerate(cases.items()):
        path = folder / f"{name}.wav"
        sf.write(path, clip(seconds, sr, seed=i), sr, subtype="FLOAT")
        out[name] = path
    return out
