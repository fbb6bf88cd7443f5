"""Training an LMAC-ZS decoder: config, data, DDP helpers, validation and the :class:`Trainer`.

The names below are imported on first use, so the light submodules (``presets``) load
without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "DATA_SETS": "config", "TrainConfig": "config", "TrainResult": "config", "lr_lambda": "config",
    "Trainer": "trainer", "train": "trainer",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
