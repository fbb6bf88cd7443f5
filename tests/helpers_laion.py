"""Fixtures for LAION-CLAP tests: a stub roberta tokenizer and deterministic clips.

Nothing here touches the network. The package's own reference path lives in
:mod:`lmaczs_cli.models.laion_reference` (re-exported here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmaczs_cli.models.laion_reference import package_module, package_reference

__all__ = ["make_signals", "make_stub_tokenizer", "package_module", "package_reference"]

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3 as in roberta-base
WORDS = ["dog", "bark", "ing", "cat", "rain", "this", "is", "a", "sound", "of"]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / RoBERTa byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def make_stub_tokenizer(folder: Path) -> Path:
    """A tiny byte-level BPE ``vocab.json`` + ``merges.txt`` that RobertaTokenizer accepts."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {t: i for i, t in enumerate(SPECIALS)}
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
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    merges = list(dict.fromkeys(merges))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


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
