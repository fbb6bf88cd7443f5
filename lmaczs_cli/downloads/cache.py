"""Where downloaded files live, and finding them again offline (nothing here uses the network).

lmaczs's own cache is ``$XDG_CACHE_HOME/lmaczs/<kind>/`` (absolute values only), else
``~/.cache/lmaczs/<kind>/``: ``clap/`` for checkpoints, ``tokenizers/<name>/`` for tokenizer
files. Hub repos (``hf:`` models and decoders) live in the Hugging Face hub cache
(:func:`hf_hub_dirs`). The model loaders read these folders; only ``lmaczs download`` fills them.
"""

from __future__ import annotations

import os
from pathlib import Path

from lmaczs_cli.errors import UsageError


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/lmaczs`` (absolute values only, per the XDG spec) else ``~/.cache/lmaczs``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lmaczs"


def clap_cache_dir() -> Path:
    """Where ``lmaczs download clap`` puts checkpoints and the LAION model looks for them."""
    return cache_root() / "clap"


def tokenizer_cache_dir(name: str = "roberta-base") -> Path:
    """Where ``lmaczs download tokenizer NAME`` puts a tokenizer's files (default roberta-base)."""
    return cache_root() / "tokenizers" / name


def hf_hub_dirs() -> list[Path]:
    """Hugging Face hub cache folders, in huggingface_hub's order of precedence (read at call time).

    The first one is where huggingface_hub (and ``lmaczs download clap hf:...``) writes.
    """
    env = os.environ
    hf_home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    dirs = [env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE"),
            env.get("TRANSFORMERS_CACHE"), os.path.join(hf_home, "hub")]
    return list(dict.fromkeys(Path(os.path.expanduser(d)) for d in dirs if d))


def find_clap_checkpoint(ckpt: str | os.PathLike[str] | None, default: str, *, family: str,
                         get: str | None, get_default: str, ext: str, label: str) -> Path | None:
    """A CLAP checkpoint file, or ``None`` for ``"random"`` weights (never downloads).

    ``ckpt`` (``--clap-ckpt``) > ``$LMACZS_CLAP_CKPT`` > ``default`` in the lmaczs cache; a bare
    file name is also looked for in the cache. Raises a one-line :class:`UsageError` naming
    every place looked at and the ``lmaczs download clap`` name that supplies it (``get``; None:
    the name given); ``family``/``label`` name the model, ``ext`` its file type.
    """
    value = os.fspath(ckpt) if ckpt is not None else os.environ.get("LMACZS_CLAP_CKPT") or None
    cache = clap_cache_dir()
    if value == "random":
        return None
    if value:
        path = Path(value).expanduser()
        if path.is_file():
            return path
        looked = [path]
        if path.name == value:
            if (cache / value).is_file():
                return cache / value
            looked.append(cache / value)
        where = " and ".join(str(p) for p in looked)
        raise UsageError(
            f"{family} checkpoint not found: looked at {where} (from --clap-ckpt/LMACZS_CLAP_CKPT); "
            f"get {'one' if get is None else 'it'} with `lmaczs download clap {get or path.name}` "
            f"or pass an existing {ext} file"
        )
    path = cache / default
    if path.is_file():
        return path
    raise UsageError(
        f"no {label} checkpoint: looked at {path} (no --clap-ckpt, LMACZS_CLAP_CKPT "
        f"unset); run `lmaczs download clap {get_default}` or pass --clap-ckpt FILE "
        "('random' for untrained test weights)"
    )


def hub_snapshots(hub: Path, repos: tuple[str, ...]) -> list[Path]:
    """Snapshot folders of ``repos`` (``models--owner--name``) in one hub cache, each repo's
    ``refs/main`` first (read only, never downloads)."""
    out: list[Path] = []
    for repo in repos:
        root = hub / repo
        ref = root / "refs" / "main"
        if ref.is_file():
            out.append(root / "snapshots" / ref.read_text().strip())
        snaps = root / "snapshots"
        if snaps.is_dir():
            out.extend(sorted(p for p in snaps.iterdir() if p.is_dir()))
    return list(dict.fromkeys(out))
