"""Registry and factory of zero-shot models (``create_model(name, ...)``)."""

from __future__ import annotations

import functools
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
# prefix -> ("module:factory", description, placeholder): ``<prefix><spec>`` is built by
# ``factory(spec, **kwargs)``, e.g. ``hf:laion/clap-htsat-unfused``
_PREFIXES: dict[str, tuple[str, str, str]] = {}


def register_model(name: str, target: str, description: str = "") -> None:
    """Register ``name`` as built by ``target`` ("package.module:function")."""
    _MODELS[name] = target
    _DESCRIPTIONS[name] = description


def register_prefix(prefix: str, target: str, description: str = "", placeholder: str = "SPEC") -> None:
    """Register a family of models named ``prefix + spec``, built by ``target(spec, **kwargs)``."""
    _PREFIXES[prefix] = (target, description, placeholder)


def list_models() -> list[str]:
    """Registered model names."""
    return sorted(_MODELS)


def list_prefixes() -> list[str]:
    """Name patterns of prefix families, e.g. ``hf:<repo-id-or-folder>``."""
    return [f"{p}<{_PREFIXES[p][2]}>" for p in sorted(_PREFIXES)]


def describe_models() -> dict[str, str]:
    """Name (or name pattern) -> description, for listings."""
    out = {n: _DESCRIPTIONS[n] for n in list_models()}
    out.update({f"{p}<{t[2]}>": t[1] for p, t in sorted(_PREFIXES.items())})
    return out


def _load(target: str) -> Callable[..., Any]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _factory(name: str) -> Callable[..., Any]:
    if name in _MODELS:
        return _load(_MODELS[name])
    for prefix, (target, _, _) in _PREFIXES.items():
        if name.startswith(prefix):
            return functools.partial(_load(target), name[len(prefix):])
    known = ", ".join(list_models() + list_prefixes())
    raise UsageError(f"unknown model {name!r} (--clap); choose one of: {known}")


def check_known(name: str) -> None:
    """A usage error for a model name nothing is registered under (nothing is imported)."""
    if name not in _MODELS and not any(name.startswith(p) for p in _PREFIXES):
        _factory(name)  # raises the one-line error with the known names


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
    "lmaczs_cli.models.laion.model:build_htsat_tiny",
    "LAION-CLAP, HTSAT-tiny audio + RoBERTa text, non-fusion (630k-audioset-best.pt)",
)
register_model(
    "laion-htsat-base",
    "lmaczs_cli.models.laion.model:build_htsat_base",
    "LAION-CLAP, HTSAT-base audio + RoBERTa text, non-fusion",
)
register_model(
    "laion-htsat-tiny-fusion",
    "lmaczs_cli.models.laion.fusion:build_htsat_tiny_fusion",
    "LAION-CLAP fusion, HTSAT-tiny + RoBERTa (630k-audioset-fusion-best.pt): a clip longer than 10 s "
    "is scored whole (shrunk clip + 3 crops at recorded positions)",
)
register_model(
    "small",
    "lmaczs_cli.models.small.model:load_small",
    "bundled small CLAP-style model trained on the synthetic sound world (offline)",
)
register_model(
    "hf-htsat-tiny",
    "lmaczs_cli.models.hf.build:build_hf_htsat_tiny",
    "Hugging Face ClapModel, HTSAT-tiny (laion/clap-htsat-unfused from the HF cache; "
    "--clap-ckpt random: its architecture, offline)",
)
register_model(
    "hf-htsat-base",
    "lmaczs_cli.models.hf.build:build_hf_htsat_base",
    "Hugging Face ClapModel, HTSAT-base (laion/larger_clap_general from the HF cache; "
    "--clap-ckpt random: its architecture, offline)",
)
register_prefix(
    "hf:",
    "lmaczs_cli.models.hf.build:build_hf_spec",
    "Hugging Face ClapModel from a hub repo id in the HF cache (`lmaczs download clap hf:ID`) "
    "or a save_pretrained folder",
    "repo-id-or-folder",
)
register_model(
    "ms-clap-2022",
    "lmaczs_cli.models.msclap.model:build_ms_clap_2022",
    "Microsoft CLAP 2022, CNN14 audio + BERT text, 5 s at 44.1 kHz (the LMAC-ZS paper's model)",
)
register_model(
    "ms-clap-2023",
    "lmaczs_cli.models.msclap.model:build_ms_clap_2023",
    "Microsoft CLAP 2023, HTSAT audio + GPT-2 text, 7 s at 44.1 kHz",
)
register_model(
    "pe-audio",
    "lmaczs_cli.models.pe_audio.model:build_pe_audio",
    "Meta Perception Encoder audio (transformers PeAudioModel, DAC front end on 48 kHz waveform + "
    "ModernBERT text); --clap-ckpt random: its architecture, offline; or a saved folder",
)
register_prefix(
    "pe-audio:",
    "lmaczs_cli.models.pe_audio.model:build_pe_audio_spec",
    "PE-Audio (transformers PeAudioModel) from a save_pretrained folder or a hub repo id in the HF cache",
    "repo-id-or-folder",
)
