"""Registry and factory of zero-shot models (``create_model(name, ...)``)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from lmaczs_cli.errors import UsageError
from lmaczs_cli.runtime import DEFAULT_MODEL

# name -> "module:factory". Modules are imported only when a model is created,
# so listing names stays cheap (the CLI uses this for --help and completion).
_MODELS: dict[str, str] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, target: str, description: str = "") -> None:
    """Register ``name`` as built by ``target`` ("package.module:function")."""
    _MODELS[name] = target
    _DESCRIPTIONS[name] = description


def list_models() -> list[str]:
    """Registered model names."""
    return sorted(_MODELS)


def describe_models() -> dict[str, str]:
    return {n: _DESCRIPTIONS[n] for n in list_models()}


def _factory(name: str) -> Callable[..., Any]:
    if name not in _MODELS:
        known = ", ".join(list_models())
        raise UsageError(f"unknown model {name!r} (--clap); choose one of: {known}")
    module, func = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), func)


def create_model(name: str, **kwargs: Any):
    """Build the registered model ``name`` (frozen, eval mode) with factory ``kwargs``."""
    model = _factory(name)(**kwargs)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_model(
    name: str = DEFAULT_MODEL,
    ckpt: str | os.PathLike[str] | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    device: Any = "auto",
    seed: int = 0,
):
    """The frozen zero-shot model ``name`` on ``device`` (``auto``: CUDA when available).

    ``ckpt``: its checkpoint file (``"random"``: seeded random weights, for trying
    things offline); ``tokenizer_dir``: where its text tokenizer's files are.
    """
    from lmaczs_cli.runtime import resolve_device

    dev = resolve_device(device)
    model = create_model(
        name, ckpt=None if ckpt is None else str(ckpt), tokenizer_dir=tokenizer_dir, device=str(dev),
        seed=seed,
    )
    return model.to(dev)


register_model(
    "laion-htsat-tiny",
    "lmaczs_cli.models.laion:build_htsat_tiny",
    "LAION-CLAP, HTSAT-tiny audio + RoBERTa text, non-fusion (630k-audioset-best.pt)",
)
register_model(
    "laion-htsat-base",
    "lmaczs_cli.models.laion:build_htsat_base",
    "LAION-CLAP, HTSAT-base audio + RoBERTa text, non-fusion",
)
register_model(
    "small",
    "lmaczs_cli.models.small:load_small",
    "bundled small CLAP-style model trained on the synthetic sound world (offline)",
)
