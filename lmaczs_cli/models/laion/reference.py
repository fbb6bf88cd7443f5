"""The ``laion_clap`` package's *own* inference path, for parity checks and benchmarks.

``CLAP_Module`` (``laion_clap/hook.py``) and ``get_audio_features`` /
``int16_to_float32`` / ``float32_to_int16`` (``laion_clap/training/data.py``) are
compiled from their source files without running those modules' top level
(which edits ``sys.path`` and downloads three tokenizers). :func:`package_module`
then wraps a :class:`~lmaczs_cli.models.laion.model.LaionClap`'s weights in a real
``CLAP_Module``, so ``get_audio_embedding_from_data`` / ``get_text_embedding`` run
exactly the upstream code on the same weights.
"""

from __future__ import annotations

import ast
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lmaczs_cli.models.laion.upstream import load_upstream

_DATA_FUNCS = ("int16_to_float32", "float32_to_int16", "get_audio_features")


def _compile_from(path: Path, names: set[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute only the top-level ``def``/``class`` statements ``names`` of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    body = [n for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name in names]
    missing = names - {n.name for n in body}
    if missing:
        raise RuntimeError(f"{path} no longer defines {sorted(missing)}")
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def package_reference() -> SimpleNamespace:
    """``CLAP_Module`` and the data helpers, as the installed package defines them."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    root = load_upstream().package_dir
    data = _compile_from(root / "training" / "data.py", set(_DATA_FUNCS),
                         {"np": np, "torch": torch, "F": F, "suppress": suppress})
    funcs = {k: data[k] for k in _DATA_FUNCS}
    hook = _compile_from(root / "hook.py", {"CLAP_Module"}, {"torch": torch, **funcs})
    return SimpleNamespace(**funcs, CLAP_Module=hook["CLAP_Module"])


def package_module(model: Any, ref: SimpleNamespace, tokenizer: Any) -> Any:
    """A ``CLAP_Module`` on ``model.clap``'s weights (its ``__init__`` would download
    roberta-base, so the attributes it sets are set here instead)."""
    import torch

    mod = ref.CLAP_Module.__new__(ref.CLAP_Module)
    torch.nn.Module.__init__(mod)
    mod.enable_fusion = False
    mod.model = model.clap
    mod.model_cfg = model.model_cfg
    mod.tokenize = tokenizer
    return mod
