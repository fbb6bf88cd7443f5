"""Where LAION-CLAP's text tokenizer (roberta-base ``vocab.json`` + ``merges.txt``) is, without
downloading anything and without importing torch (``lmaczs`` checks it before building a model)."""

from __future__ import annotations

import os
from pathlib import Path

from lmaczs_cli.downloads.cache import hf_hub_dirs, hub_snapshots, tokenizer_cache_dir
from lmaczs_cli.errors import UsageError

TOKENIZER_FILES = ("vocab.json", "merges.txt")
HUB_REPOS = ("models--FacebookAI--roberta-base", "models--roberta-base")


# -- text tokenizer -------------------------------------------------------------------


def resolve_tokenizer_dir(tokenizer_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder with roberta-base's ``vocab.json`` and ``merges.txt`` (never downloads).

    ``tokenizer_dir`` (``--tokenizer-dir``) > ``$LMACZS_TOKENIZER_DIR`` > the lmaczs
    cache (``lmaczs download tokenizer``) > the Hugging Face hub cache.
    """
    explicit = tokenizer_dir or os.environ.get("LMACZS_TOKENIZER_DIR") or None
    hint = "run `lmaczs download tokenizer` or pass --tokenizer-dir DIR holding roberta-base's"
    if explicit:
        d = Path(explicit).expanduser()
        missing = [f for f in TOKENIZER_FILES if not (d / f).is_file()]
        if missing:
            raise UsageError(
                f"tokenizer folder {d} lacks {' and '.join(missing)} "
                f"(--tokenizer-dir/LMACZS_TOKENIZER_DIR); {hint} vocab.json and merges.txt"
            )
        return d
    candidates = [tokenizer_cache_dir()]
    hubs = hf_hub_dirs()
    for hub in hubs:
        candidates += hub_snapshots(hub, HUB_REPOS)
    for d in candidates:
        if all((d / f).is_file() for f in TOKENIZER_FILES):
            return d
    looked = [str(tokenizer_cache_dir())] + [f"{h}/{repo}/snapshots/*" for h in hubs for repo in HUB_REPOS]
    raise UsageError(
        f"roberta-base tokenizer files vocab.json and merges.txt not found; looked in "
        f"{', '.join(looked)}; {hint} vocab.json and merges.txt"
    )


def load_tokenizer(folder: Path):
    """``RobertaTokenizer`` from local files only."""
    from transformers import RobertaTokenizer

    try:
        return RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # malformed files: say which folder
        raise UsageError(f"cannot read the tokenizer in {folder}: {e}") from None
