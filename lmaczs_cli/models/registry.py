"""Registry and factory of zero-shot models (``create_model(name, ...)``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lmaczs_cli.errors import UsageError

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
register_model(
    "ms-clap-2022",
    "lmaczs_cli.models.msclap:build_ms_clap_2022",
    "Microsoft CLAP 2022, CNN14 audio + BERT text, 5 s at 44.1 kHz (the LMAC-ZS paper's model)",
)
register_model(
    "ms-clap-2023",
    "lmaczs_cli.models.msclap:build_ms_clap_2023",
    "Microsoft CLAP 2023, HTSAT audio + GPT-2 text, 7 s at 44.1 kHz",
)
