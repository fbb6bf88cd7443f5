"""Load the ``msclap`` package's model code without its side effects or downloads.

``msclap`` (Microsoft CLAP, PyPI 1.3.x) is installed with ``pip install --no-deps``:
its pins (``transformers<5``, ``librosa<0.11``, ``pandas<3``) would downgrade our
environment, and its model code needs none of them. ``import msclap`` runs
``msclap/__init__.py`` -> ``CLAPWrapper.py``, which calls
``warnings.filterwarnings("ignore")`` (silencing every warning in the process) and
``transformers.logging.set_verbosity_error()``; building ``CLAPWrapper`` then
downloads the checkpoint, ``AutoModel.from_pretrained(text_model)`` and
``AutoTokenizer.from_pretrained(text_model)``.

We need only ``msclap/models/{clap,audio,htsat,config,pytorch_utils}.py`` and the
YAML configs. As for ``laion_clap`` (see :mod:`laion_upstream`), namespace stubs
``_lmaczs_msclap`` and ``_lmaczs_msclap.models`` point at the installed folders
without executing either ``__init__.py``; importing
``_lmaczs_msclap.models.clap`` then loads the real files. In *our private copy*
of ``clap.py`` the name ``AutoModel`` is bound to :class:`_OfflineTextModel`,
which builds bert-base-uncased / gpt2 from their published configurations with
random weights (the MS-CLAP checkpoints hold every text weight). The real name
``msclap`` is never imported, ``sys.path`` and the warning filters are untouched.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.laion.upstream import _stub_package

ALIAS = "_lmaczs_msclap"
#: the version the parity tests were written against (``pip install --no-deps msclap==1.3.4``)
TESTED_VERSION = "1.3.4"
INSTALL_HINT = f"pip install --no-deps msclap=={TESTED_VERSION}"

#: bert-base-uncased's config.json values (MS-CLAP 2022's text encoder)
BERT_BASE_UNCASED: dict[str, Any] = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}
#: gpt2's config.json values (MS-CLAP 2023's text encoder)
GPT2: dict[str, Any] = {
    "vocab_size": 50257,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "activation_function": "gelu_new",
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "layer_norm_epsilon": 1e-5,
    "initializer_range": 0.02,
    "bos_token_id": 50256,
    "eos_token_id": 50256,
}

_LOCK = threading.Lock()


def text_model_config(name: str):
    """The ``transformers`` config of MS-CLAP's text model ``name``, built offline."""
    from transformers import BertConfig, GPT2Config

    if name == "bert-base-uncased":
        return BertConfig(**BERT_BASE_UNCASED)
    if name == "gpt2":
        return GPT2Config(**GPT2)
    raise RuntimeError(f"lmaczs builds only bert-base-uncased and gpt2 offline, not {name!r}")


class _OfflineTextModel:
    """Stand-in for ``transformers.AutoModel`` inside our copy of ``clap.py``."""

    @staticmethod
    def from_pretrained(name: str, *args: Any, **kwargs: Any):
        from transformers import BertModel, GPT2Model

        cfg = text_model_config(name)
        return BertModel(cfg) if name == "bert-base-uncased" else GPT2Model(cfg)


@dataclass(frozen=True)
class Upstream:
    """Handles on the upstream code: the ``clap`` and ``htsat`` modules, package folder."""

    clap: ModuleType
    htsat: ModuleType
    package_dir: Path

    def config(self, version: str) -> dict[str, Any]:
        """The package's own ``configs/config_<version>.yml`` as a dict."""
        import yaml

        path = self.package_dir / "configs" / f"config_{version}.yml"
        if not path.is_file():
            raise UsageError(f"msclap has no config for version {version!r} ({path})")
        return yaml.safe_load(path.read_text())


@functools.cache
def load_upstream() -> Upstream:
    """Import ``msclap.models.{clap,htsat}`` under a private alias (once per process)."""
    with _LOCK:
        spec = importlib.util.find_spec("msclap")  # locates; does not execute
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(f"the msclap package is not installed ({INSTALL_HINT})")
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        if ALIAS not in sys.modules:
            _stub_package(ALIAS, package_dir)
        if f"{ALIAS}.models" not in sys.modules:
            _stub_package(f"{ALIAS}.models", package_dir / "models")
        clap = importlib.import_module(f"{ALIAS}.models.clap")
        htsat = importlib.import_module(f"{ALIAS}.models.htsat")
        clap.AutoModel = _OfflineTextModel  # our private copy only
        return Upstream(clap=clap, htsat=htsat, package_dir=package_dir)
