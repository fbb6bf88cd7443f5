"""lmaczs: listenable maps for zero-shot audio classifiers (LMAC-ZS).

The public Python API (imported lazily, so ``import lmaczs_cli`` stays cheap)::

    import lmaczs_cli
    model = lmaczs_cli.load_model("small")                       # any of lmaczs_cli.list_models()
    explainer = lmaczs_cli.load_explainer("lmaczs", model)       # any of lmaczs_cli.list_explainers()
    explanations = lmaczs_cli.explain(explainer, "clip.wav", ["dog barking", "rain"])
    explanations[0].save("out/dog")   # explanation.wav + map.png; .waveform(), .plot(), .mask

See :mod:`lmaczs_cli.api` and docs/method.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_PUBLIC = {
    "load_model": "lmaczs_cli.api",
    "load_explainer": "lmaczs_cli.api",
    "explain": "lmaczs_cli.api",
    "explain_many": "lmaczs_cli.api",
    "explain_to_folder": "lmaczs_cli.api",
    "Explanation": "lmaczs_cli.api",
    "ClipExplanations": "lmaczs_cli.api",
    "list_models": "lmaczs_cli.models.registry",
    "list_explainers": "lmaczs_cli.explainers.base",
    "label_prompts": "lmaczs_cli.data.prompts",
    "load_labels": "lmaczs_cli.data.prompts",
    "Explainer": "lmaczs_cli.explainers.base",
    "ZeroShotModel": "lmaczs_cli.models.base",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmaczs_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
