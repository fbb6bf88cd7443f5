"""A tiny byte-level BPE tokenizer with roberta-base's special tokens (offline stand-in).

Random-weight models have no trained text tower to match, so any tokenizer that
turns a prompt into distinct ids works; this one needs no files or network. Ids
0..3 are ``<s> <pad> </s> <unk>`` as in roberta-base; every byte has a token, and
a few words get merges so that common prompts are short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def stub_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The stub's vocabulary (token -> id) and BPE merges, in order."""
    vocab: dict[str, int] = {t: i for i, t in enumerate(SPECIALS)}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        for w in (word, "Ġ" + word):
            cur = w[0]
            for ch in w[1:]:
                merges.append((cur, ch))
                cur += ch
                vocab.setdefault(cur, len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab, list(dict.fromkeys(merges))


def write_stub_files(folder: Path) -> Path:
    """``vocab.json`` + ``merges.txt`` of the stub in ``folder`` (what RobertaTokenizer reads)."""
    vocab, merges = stub_vocab_and_merges()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    lines = "\n".join(f"{a} {b}" for a, b in merges)
    (folder / "merges.txt").write_text("#version: 0.2\n" + lines + "\n")
    return folder


def stub_roberta_tokenizer(model_max_length: int = 512) -> Any:
    """The stub as an in-memory ``transformers.RobertaTokenizer``."""
    from transformers import RobertaTokenizer

    vocab, merges = stub_vocab_and_merges()
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


GPT2_END = "<|endoftext|>"


def stub_gpt2_tokenizer() -> Any:
    """A stub laid out like GPT-2's (the 256 byte symbols first, ``<|endoftext|>`` last) as a
    ``GPT2Tokenizer`` with ``"!"`` as pad token, as MS-CLAP 2023 sets it."""
    import tempfile

    from transformers import GPT2Tokenizer

    vocab: dict[str, int] = {}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    _, merges = stub_vocab_and_merges()
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab[GPT2_END] = len(vocab)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        lines = "\n".join(f"{a} {b}" for a, b in merges)
        (Path(d) / "merges.txt").write_text("#version: 0.2\n" + lines + "\n")
        tok = GPT2Tokenizer(str(Path(d) / "vocab.json"), str(Path(d) / "merges.txt"))
    tok.add_special_tokens({"pad_token": "!"})
    return tok
