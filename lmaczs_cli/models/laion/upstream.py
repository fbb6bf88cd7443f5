"""Load the ``laion_clap`` package's model code without its import-time downloads.

``import laion_clap`` runs ``laion_clap/__init__.py``, which appends its folder to
``sys.path`` and imports ``hook.py`` -> ``training/data.py``; that module calls
``{Bert,Roberta,Bart}Tokenizer.from_pretrained(...)`` at import time (network).
We need only ``clap_module.model`` / ``clap_module.htsat`` and the JSON configs,
whose imports are all relative and side-effect free.

How: two *namespace stubs* are registered under a private alias
(``_lmaczs_laion_clap`` and ``_lmaczs_laion_clap.clap_module``) whose ``__path__``
points at the installed package folders, without executing either
``__init__.py``. ``importlib.import_module("_lmaczs_laion_clap.clap_module.model")``
then loads the real upstream files; their relative imports resolve inside the
alias. The real name ``laion_clap`` is never touched (importing it later works
as usual), ``sys.path`` is unchanged, and loading is done once per process.

``CLAP.__init__`` builds its text branch with ``RobertaModel.from_pretrained
('roberta-base')``. In *our private copy* of ``model.py`` that name is bound to
:class:`_OfflineRoberta`, which builds the same architecture from an explicit
roberta-base config with random weights; the LAION checkpoint then supplies all
of them (it holds the full text branch).
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lmaczs_cli.errors import UsageError

ALIAS = "_lmaczs_laion_clap"

#: roberta-base architecture (the values of its config.json), so nothing is fetched.
ROBERTA_BASE: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Upstream:
    """Handles on the upstream code: ``model`` and ``htsat`` modules, package folder."""

    model: ModuleType
    htsat: ModuleType
    package_dir: Path

    def model_config(self, amodel: str) -> dict[str, Any]:
        """The package's own JSON config ``model_configs/<amodel>.json``."""
        path = self.package_dir / "clap_module" / "model_configs" / f"{amodel}.json"
        return json.loads(path.read_text())


def roberta_base_config():
    """A ``transformers.RobertaConfig`` equal to roberta-base's (built offline)."""
    from transformers import RobertaConfig

    return RobertaConfig(**ROBERTA_BASE)


class _OfflineRoberta:
    """Stand-in for ``transformers.RobertaModel`` inside our copy of ``model.py``."""

    @staticmethod
    def from_pretrained(name: str, *args: Any, **kwargs: Any):
        from transformers import RobertaModel

        if name not in ("roberta-base", "FacebookAI/roberta-base"):
            raise RuntimeError(f"lmaczs builds only roberta-base offline, not {name!r}")
        return RobertaModel(roberta_base_config())


def _stub_package(name: str, path: Path) -> ModuleType:
    spec = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
    spec.submodule_search_locations = [str(path)]
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    return module


@functools.cache
def load_upstream() -> Upstream:
    """Import ``laion_clap.clap_module.{model,htsat}`` under a private alias (once)."""
    with _LOCK:
        spec = importlib.util.find_spec("laion_clap")  # locates; does not execute
        if spec is None or not spec.submodule_search_locations:
            raise UsageError("the laion-clap package is not installed (pip install laion-clap)")
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        if ALIAS not in sys.modules:
            _stub_package(ALIAS, package_dir)
        if f"{ALIAS}.clap_module" not in sys.modules:
            _stub_package(f"{ALIAS}.clap_module", package_dir / "clap_module")
        model = importlib.import_module(f"{ALIAS}.clap_module.model")
        htsat = importlib.import_module(f"{ALIAS}.clap_module.htsat")
        model.RobertaModel = _OfflineRoberta  # our private copy only
        return Upstream(model=model, htsat=htsat, package_dir=package_dir)
