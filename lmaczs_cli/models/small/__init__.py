"""The bundled small CLAP-style model (``--clap small``), trained on the synthetic sound world.

- :mod:`.family`: its record; :mod:`.model`: :class:`~lmaczs_cli.models.small.model.SmallClap`,
  :func:`~lmaczs_cli.models.small.model.load_small`;
- :mod:`.training`: how the bundled weights were trained (``python -m lmaczs_cli.dev.small_training``);
- :mod:`.domain`: its out-of-domain flag (``python -m lmaczs_cli.dev.small_domain``).

The weights stay in ``lmaczs_cli/assets/small/``. Importing this package imports nothing heavy;
the model's names (``load_small``, ``SmallClap`` ...) are read from :mod:`.model` on first use.
"""

from __future__ import annotations

from typing import Any

#: names read from :mod:`.model` on first use (``lmaczs_cli.models.small.load_small`` keeps working)
_FROM_MODEL = ("SmallClap", "load_small", "bundled_weights")


def __getattr__(name: str) -> Any:
    if name not in _FROM_MODEL:
        raise AttributeError(f"module 'lmaczs_cli.models.small' has no attribute {name!r}")
    from lmaczs_cli.models.small import model

    return getattr(model, name)
