"""Find, read and check Microsoft CLAP checkpoints (no code execution, no network).

Resolution for ``ms-clap-<version>``: ``ckpt`` (``--clap-ckpt``) >
``$LMACZS_CLAP_CKPT`` > ``CLAP_weights_<version>.pth`` in the lmaczs cache
(``lmaczs download clap ms-clap-<version>`` puts it there). A bare file name is
also looked up in that cache; ``"random"`` means seeded random weights.

Format: the published files are ``{"model": state_dict, ...}`` (``CLAPWrapper``
reads ``torch.load(fp)["model"]``); a bare state dict is accepted too, and a
DDP ``module.`` prefix is stripped. Reading goes through
:func:`lmaczs_cli.models.laion.checkpoint.read_checkpoint` (``weights_only``).

Unlike ``CLAPWrapper`` (``load_state_dict(strict=False)``, which silently keeps
random weights for anything missing), every key must match, except the named
buffers in :data:`IGNORABLE` that older ``transformers`` versions saved and
current ones no longer keep (their values are fixed by construction).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from lmaczs_cli.downloads.cache import find_clap_checkpoint
from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.laion.checkpoint import read_checkpoint

#: default file per version (the names ``lmaczs download clap`` knows)
DEFAULT_CHECKPOINTS = {"2022": "CLAP_weights_2022.pth", "2023": "CLAP_weights_2023.pth"}
MODEL_NAMES = {"2022": "ms-clap-2022", "2023": "ms-clap-2023"}

#: checkpoint keys that may be present without a counterpart in the module:
#: BERT's ``position_ids`` / ``token_type_ids`` and GPT-2's causal ``attn.bias`` /
#: ``attn.masked_bias`` buffers (persistent in transformers 3/4, not any more)
IGNORABLE = (
    re.compile(r"caption_encoder\.base\.embeddings\.(position_ids|token_type_ids)"),
    re.compile(r"caption_encoder\.base\.h\.\d+\.attn\.(bias|masked_bias)"),
)


def resolve_checkpoint(ckpt: str | os.PathLike[str] | None, version: str) -> Path | None:
    """Path of the checkpoint to load, or ``None`` for ``"random"`` weights (see
    :func:`lmaczs_cli.downloads.cache.find_clap_checkpoint`)."""
    name = MODEL_NAMES[version]
    return find_clap_checkpoint(ckpt, DEFAULT_CHECKPOINTS[version], family="MS-CLAP", get=name,
                                get_default=name, ext=".pth", label=f"MS-CLAP {version}")


def family_of(sd: dict[str, Any]) -> str:
    """Which model a state dict belongs to, for error hints."""
    if any(k.startswith("audio_encoder.base.conv_block1.") for k in sd):
        return "ms-clap-2022"
    if any(k.startswith("audio_encoder.base.htsat.") for k in sd):
        return "ms-clap-2023"
    if any(k.startswith("audio_branch.") for k in sd):
        return "laion-htsat-tiny/laion-htsat-base"
    return "unknown"


def msclap_state_dict(obj: Any, source: str, version: str) -> dict[str, Any]:
    """The ``CLAP`` module's state dict from a loaded checkpoint, checked to be ``version``'s."""
    import torch

    if isinstance(obj, dict):  # LAION files keep theirs under "state_dict": name them below
        sd = obj["model"] if "model" in obj else obj.get("state_dict", obj)
    else:
        sd = obj
    if not isinstance(sd, dict) or not sd or not all(
        isinstance(v, torch.Tensor) for v in sd.values()
    ):
        raise UsageError(f"{source}: not an MS-CLAP checkpoint (no tensor state dict under 'model')")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    found, wanted = family_of(sd), MODEL_NAMES[version]
    if found != wanted:
        hint = f"use --clap {found}" if found != "unknown" else "no MS-CLAP audio encoder weights"
        raise UsageError(f"{source} is not an {wanted} checkpoint ({hint})")
    return sd


def read_msclap_checkpoint(path: Path, version: str) -> dict[str, Any]:
    """Read ``path`` safely and return its ``CLAP`` state dict (see module docstring)."""
    return msclap_state_dict(read_checkpoint(path), str(path), version)


def _ignorable(key: str) -> bool:
    return any(p.fullmatch(key) for p in IGNORABLE)


def _names(keys: list[str], limit: int = 4) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_strict(module: Any, sd: dict[str, Any], source: str, name: str) -> None:
    """Load ``sd`` into ``module``: every key must match (bar :data:`IGNORABLE`), every shape too."""
    own = module.state_dict()
    sd = {k: v for k, v in sd.items() if k in own or not _ignorable(k)}
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    bad_shape = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_names(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_names(unexpected)})")
    if bad_shape:
        shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in bad_shape]
        problems.append(f"{len(bad_shape)} shape mismatches ({_names(shapes, 2)})")
    if problems:
        raise UsageError(f"{source} does not fit {name}: {'; '.join(problems)}")
    module.load_state_dict(sd, strict=True)


def preflight_missing(clap: str, ckpt: str | None, tokenizer_dir: os.PathLike[str] | str | None) -> list[str]:
    """What an MS-CLAP run lacks on this machine (checkpoint; 2023: gpt2's tokenizer)."""
    version = clap.removeprefix("ms-clap-")
    out = []
    try:
        resolve_checkpoint(ckpt, version)
    except UsageError:
        out.append(f"the {clap} checkpoint (`lmaczs download clap {clap}`, or --clap-ckpt FILE)")
    if version == "2023" and str(ckpt) != "random":
        from lmaczs_cli.models.msclap.text import resolve_gpt2_dir

        try:
            resolve_gpt2_dir(tokenizer_dir)
        except UsageError:
            out.append("gpt2's tokenizer files (`lmaczs download tokenizer gpt2`, or --tokenizer-dir DIR)")
    return out
