"""Factories of the Hugging Face CLAP backend: ``hf:<repo-or-folder>``, ``hf-htsat-tiny``, ``hf-htsat-base``.

Everything loads with ``local_files_only=True`` from a folder (``save_pretrained``
output or a hub-cache snapshot, see :mod:`lmaczs_cli.models.hf.source`); ``--clap-ckpt random``
builds seeded random weights of a named architecture with no file at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmaczs_cli.errors import RandomWeightsWarning, UsageError
from lmaczs_cli.models.hf.clap import HfClap
from lmaczs_cli.models.hf.configs import NAMED, NamedClap
from lmaczs_cli.models.hf.source import CONFIG, has_tokenizer, resolve_hf_source
from lmaczs_cli.models.stub_tokenizer import stub_roberta_tokenizer

PathLike = str | os.PathLike[str]
#: buffers the model rebuilds from its config; checkpoints from older transformers may lack them
RECOMPUTED_BUFFERS = ("position_ids", "token_type_ids", "relative_position_index", "num_batches_tracked")


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Loading weights" progress bars or info logs while loading (restored after)."""
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# -- pieces ---------------------------------------------------------------------------


def read_config(folder: Path) -> Any:
    """``ClapConfig`` from ``folder/config.json`` (refusing other model types)."""
    from transformers import ClapConfig

    path = folder / CONFIG
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable config ({_first_line(e)})") from None
    if kind != "clap":
        raise UsageError(f"{path}: model_type {kind!r}, not 'clap' (a transformers ClapModel)")
    with _quiet_transformers():
        return ClapConfig.from_pretrained(str(folder), local_files_only=True)


def load_extractor(folder: Path) -> Any:
    """The checkpoint's own ``ClapFeatureExtractor`` settings (``preprocessor_config.json``)."""
    from transformers import ClapFeatureExtractor

    try:
        with _quiet_transformers():
            return ClapFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"{folder}: cannot read the feature extractor settings ({_first_line(e)})") from None


def load_text_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in ``folder`` (AutoTokenizer files, else roberta vocab.json + merges.txt)."""
    from transformers import AutoTokenizer, RobertaTokenizer

    if not has_tokenizer(folder):
        raise UsageError(f"{folder}: no tokenizer files (tokenizer.json, tokenizer_config.json "
                         "or vocab.json + merges.txt)")
    auto = (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()
    try:
        with _quiet_transformers():
            cls = AutoTokenizer if auto else RobertaTokenizer
            return cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise UsageError(f"{folder}: cannot read the tokenizer ({_first_line(e)})") from None


def load_pretrained(folder: Path) -> nn.Module:
    """``ClapModel.from_pretrained(folder, local_files_only=True)`` in fp32; every weight must fit."""
    from transformers import ClapModel

    read_config(folder)  # refuse non-CLAP folders with a clear line
    try:
        with _quiet_transformers(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clap, info = ClapModel.from_pretrained(str(folder), local_files_only=True,
                                                   output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise UsageError(f"{folder}: cannot load the ClapModel weights ({_first_line(e)})") from None
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith(RECOMPUTED_BUFFERS)]
    bad = sorted(missing) + sorted(str(k) for k in info.get("mismatched_keys", ()))
    if bad:
        raise UsageError(
            f"{folder}: the weights do not fit a ClapModel ({len(bad)} missing or mismatched, e.g. "
            f"{bad[0]}); save the full model with ClapModel.save_pretrained"
        )
    return clap.float().eval()  # fp32 whatever the checkpoint's dtype


def random_clap(config: Any, seed: int) -> nn.Module:
    """A ``ClapModel`` with seeded random weights (global RNG left as it was).

    The audio batch norm gets typical dB statistics (mean -40, std 30): with
    (0, 1) the untrained encoder sees raw dB values and its embeddings barely
    depend on the input, which would make random-weight runs meaningless.
    """
    from transformers import ClapModel

    with torch.random.fork_rng(devices=[]), _quiet_transformers():
        torch.manual_seed(seed)
        clap = ClapModel(config)
    bn = clap.audio_model.audio_encoder.batch_norm
    with torch.no_grad():
        bn.running_mean.fill_(-40.0)
        bn.running_var.fill_(30.0**2)
    return clap.eval()


def _warn_random(name: str, seed: int, stub: bool, trained: str) -> None:
    tok = " and a stub text tokenizer" if stub else ""
    warnings.warn(
        f"{name}: using RANDOM weights (seed {seed}){tok} - embeddings and explanations are "
        f"meaningless; for a trained model use {trained}",
        RandomWeightsWarning,
        stacklevel=4,
    )


def _finish(model: HfClap, device: str | torch.device) -> HfClap:
    return model.to(_device(device)).eval()


# -- factories ------------------------------------------------------------------------


def build_hf_spec(
    spec: str,
    ckpt: str | None = None,
    tokenizer_dir: PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    **_: Any,
) -> HfClap:
    """``--clap hf:<spec>``: a hub repo id (from the HF cache) or a ``save_pretrained`` folder.

    ``ckpt="random"``: that checkpoint's architecture, extractor and tokenizer with
    seeded random weights. ``tokenizer_dir`` replaces the checkpoint's tokenizer.
    """
    if ckpt not in (None, "random"):
        raise UsageError(
            f"--clap-ckpt/LMACZS_CLAP_CKPT {ckpt!r} does not apply to --clap hf:{spec} (the weights "
            "come from the repo or folder); leave it unset, or 'random' for untrained weights"
        )
    src = resolve_hf_source(spec, need="config" if ckpt == "random" else "all")
    extractor = load_extractor(src.folder)
    tokenizer = load_text_tokenizer(Path(tokenizer_dir) if tokenizer_dir else src.folder)
    if ckpt == "random":
        clap = random_clap(read_config(src.folder), seed)
        _warn_random(src.model_name, seed, False, f"--clap {src.model_name} without --clap-ckpt")
    else:
        clap = load_pretrained(src.folder)
    source = "random" if ckpt == "random" else str(src.folder)
    return _finish(HfClap(clap, extractor, tokenizer, src.model_name, source), device)


def build_named(
    named: NamedClap,
    ckpt: str | None = None,
    tokenizer_dir: PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> HfClap:
    """A registered architecture: its hub repo from the HF cache, or ``ckpt="random"`` offline."""
    if ckpt is None:
        try:
            return build_hf_spec(named.repo, None, tokenizer_dir, device, seed)
        except UsageError as e:
            raise UsageError(f"{e} (--clap {named.name} loads {named.repo}; --clap-ckpt random "
                             "builds untrained weights offline)") from None
    if ckpt != "random":
        raise UsageError(
            f"--clap {named.name} takes no --clap-ckpt (the trained {named.repo} from the Hugging "
            f"Face cache) or 'random' (untrained test weights), not {ckpt!r}; load other weights "
            "with --clap hf:REPO_OR_FOLDER"
        )
    from transformers import ClapConfig, ClapFeatureExtractor

    clap = random_clap(ClapConfig(**named.config_dict()), seed)
    extractor = ClapFeatureExtractor(**named.extractor)
    if tokenizer_dir:
        tokenizer = load_text_tokenizer(Path(tokenizer_dir))
    else:
        tokenizer = stub_roberta_tokenizer()
    _warn_random(named.name, seed, not tokenizer_dir, f"--clap hf:{named.repo}")
    model = HfClap(clap, extractor, tokenizer, named.name, "random")
    model.stub_tokenizer = not tokenizer_dir
    return _finish(model, device)


def build_hf_htsat_tiny(ckpt: str | None = None, tokenizer_dir: PathLike | None = None,
                        device: str | torch.device = "cpu", seed: int = 0, **_: Any) -> HfClap:
    """``hf-htsat-tiny``: laion/clap-htsat-unfused (HF cache) or its architecture with random weights."""
    return build_named(NAMED["hf-htsat-tiny"], ckpt, tokenizer_dir, device, seed)


def build_hf_htsat_base(ckpt: str | None = None, tokenizer_dir: PathLike | None = None,
                        device: str | torch.device = "cpu", seed: int = 0, **_: Any) -> HfClap:
    """``hf-htsat-base``: laion/larger_clap_general (HF cache) or its architecture with random weights."""
    return build_named(NAMED["hf-htsat-base"], ckpt, tokenizer_dir, device, seed)
