"""Find and read LAION-CLAP checkpoints safely (no code execution, no network).

Resolution order for the checkpoint of a LAION model:
``ckpt`` argument (``--clap-ckpt``) > ``$LMACZS_CLAP_CKPT`` > the model's
default file in the lmaczs cache (``lmaczs download clap`` puts it there).
A bare file name (``630k-best.pt``) is also looked up in that cache.

Reading: ``torch.load(weights_only=True)`` (numpy scalars allowed, as LAION's
training loop stores some). The published ``.pt`` files were pickled with
protocol 4, which torch's weights-only unpickler rejects ("Unsupported operand
149"); those are read with :class:`RestrictedUnpickler` instead, which, like
``weights_only``, only admits tensors, containers and numpy scalars, so a
checkpoint still cannot run code.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmaczs_cli.downloads.cache import find_clap_checkpoint
from lmaczs_cli.errors import UsageError

#: default checkpoint per HTSAT size (the names ``lmaczs download clap`` knows)
DEFAULT_CHECKPOINTS = {
    "HTSAT-tiny": "630k-audioset-best.pt",
    "HTSAT-base": "music_speech_audioset_epoch_15_esc_89.98.pt",
}
#: default fusion checkpoint per HTSAT size (``laion-htsat-tiny-fusion``; the package's model id 3)
DEFAULT_FUSION_CHECKPOINTS = {"HTSAT-tiny": "630k-audioset-fusion-best.pt"}
#: HTSAT size from the patch-embedding width of a checkpoint
_WIDTH_TO_AMODEL = {96: "HTSAT-tiny", 128: "HTSAT-base", 256: "HTSAT-large"}
_AMODEL_TO_MODEL = {"HTSAT-tiny": "laion-htsat-tiny", "HTSAT-base": "laion-htsat-base"}
POSITION_IDS = "text_branch.embeddings.position_ids"


def resolve_checkpoint(ckpt: str | os.PathLike[str] | None, amodel: str, fusion: bool = False) -> Path | None:
    """Path of the checkpoint to load, or ``None`` for ``"random"`` weights (see
    :func:`lmaczs_cli.downloads.cache.find_clap_checkpoint`); ``fusion``: a fusion model's."""
    default = (DEFAULT_FUSION_CHECKPOINTS if fusion else DEFAULT_CHECKPOINTS)[amodel]
    return find_clap_checkpoint(ckpt, default, family="LAION-CLAP", get=None, get_default=default,
                                ext=".pt", label="LAION-CLAP fusion" if fusion else "LAION-CLAP")


# -- safe reading ---------------------------------------------------------------

_SAFE = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Tensor"),
    ("torch", "Size"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


class UnsafeGlobal(pickle.UnpicklingError):
    """The checkpoint references a Python object outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only builds tensors, plain containers and numpy scalars."""

    def find_class(self, module: str, name: str) -> Any:
        import torch

        ok = (module, name) in _SAFE
        ok = ok or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype))
        ok = ok or (module == "numpy.dtypes" and name.endswith("DType"))
        if not ok:
            raise UnsafeGlobal(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _restricted_pickle_module() -> types.ModuleType:
    mod = types.ModuleType("lmaczs_restricted_pickle")
    mod.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    return mod


@contextlib.contextmanager
def _numpy_scalars_allowed() -> Iterator[None]:
    import numpy as np
    import torch

    ctx = getattr(torch.serialization, "safe_globals", None)
    if ctx is None:  # torch < 2.5: the restricted unpickler handles numpy
        yield
        return
    multiarray = importlib.import_module(
        "numpy._core.multiarray" if int(np.__version__.split(".")[0]) >= 2
        else "numpy.core.multiarray"
    )
    allowed: list[Any] = [multiarray.scalar, np.dtype]
    allowed += [t for t in vars(getattr(np, "dtypes", types.SimpleNamespace())).values()
                if isinstance(t, type) and issubclass(t, np.dtype)]
    with ctx(allowed):
        yield


def _torch_load(path: Path, **kw: Any) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", mmap=True, **kw)
    except RuntimeError as e:  # legacy (non-zip) files cannot be memory-mapped
        if "mmap" not in str(e) and "zip" not in str(e):
            raise
        return torch.load(path, map_location="cpu", **kw)


def read_checkpoint(path: Path) -> Any:
    """``torch.load`` the file without executing code (see module docstring)."""
    try:
        try:
            with _numpy_scalars_allowed(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*pickle protocol.*")
                return _torch_load(path, weights_only=True)
        except pickle.UnpicklingError:
            return _torch_load(path, weights_only=False, pickle_module=_restricted_pickle_module())
    except UnsafeGlobal as e:
        raise UsageError(f"{path}: not loadable as a weights-only checkpoint ({e})") from None
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError,
            KeyError, IndexError, TypeError, AttributeError) as e:  # garbage trips the unpickler
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = first if not isinstance(e, KeyError | IndexError) else f"{type(e).__name__} {first}"
        raise UsageError(f"{path}: not a readable PyTorch checkpoint ({first})") from None


def laion_state_dict(obj: Any, source: str = "checkpoint", fusion: bool = False) -> dict[str, Any]:
    """Normalise a loaded LAION checkpoint to the ``CLAP`` module's state dict.

    Takes ``obj["state_dict"]`` when present, strips DDP's ``module.`` prefix
    (as laion's ``load_state_dict`` does), drops ``text_branch.embeddings.position_ids``
    (a non-persistent buffer in current transformers), refuses fusion and
    non-HTSAT checkpoints with a clear message. ``fusion=True``: requires a fusion
    checkpoint instead (``laion-htsat-*-fusion`` models).
    """
    import torch

    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(sd, dict) or not sd or not all(
        isinstance(v, torch.Tensor) for v in sd.values()
    ):
        raise UsageError(f"{source}: not a LAION-CLAP checkpoint (no tensor state_dict)")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    sd.pop(POSITION_IDS, None)
    if not any(k.startswith("audio_branch.") for k in sd):
        raise UsageError(f"{source}: not a LAION-CLAP checkpoint (no audio_branch.* weights)")
    is_fusion = any(".fusion_model." in k or ".mel_conv" in k for k in sd)
    if is_fusion and not fusion:
        raise UsageError(
            f"{source}: fusion checkpoints are not supported by this model; load it with "
            "--clap laion-htsat-tiny-fusion, or use a non-fusion one such as 630k-audioset-best.pt "
            "(`lmaczs download clap`)"
        )
    if fusion and not is_fusion:
        raise UsageError(f"{source}: not a fusion checkpoint; load it with --clap laion-htsat-tiny or "
                         "laion-htsat-base")
    return sd


def checkpoint_amodel(sd: dict[str, Any], source: str = "checkpoint") -> str:
    """``HTSAT-tiny`` / ``HTSAT-base`` / ... from the weights' shapes."""
    w = sd.get("audio_branch.patch_embed.proj.weight")
    if w is None:
        raise UsageError(f"{source}: audio encoder is not HTSAT (PANN checkpoints are not supported)")
    amodel = _WIDTH_TO_AMODEL.get(int(w.shape[0]))
    if amodel is None:
        raise UsageError(f"{source}: unknown HTSAT width {int(w.shape[0])}")
    return amodel


def model_for(amodel: str) -> str:
    """The registry name serving ``amodel`` (for error hints)."""
    return _AMODEL_TO_MODEL.get(amodel, amodel)


def preflight_missing(clap: str, ckpt: str | None, tokenizer_dir: os.PathLike[str] | str | None) -> list[str]:
    """What a LAION-CLAP run lacks on this machine (checkpoint, roberta-base tokenizer), without torch."""
    from lmaczs_cli.models.laion.tokenizer import resolve_tokenizer_dir

    fusion = clap.endswith("-fusion")
    amodel = "HTSAT-tiny" if clap.removesuffix("-fusion").endswith("tiny") else "HTSAT-base"
    out = []
    try:
        resolve_checkpoint(ckpt, amodel, fusion)
    except UsageError:
        default = (DEFAULT_FUSION_CHECKPOINTS if fusion else DEFAULT_CHECKPOINTS)[amodel]
        name = default if not ckpt else Path(str(ckpt)).name
        out.append(f"the {clap} checkpoint {name} (`lmaczs download clap {name}`, or --clap-ckpt FILE)")
    if str(ckpt) != "random":
        try:
            resolve_tokenizer_dir(tokenizer_dir)
        except UsageError:
            out.append("roberta-base's tokenizer files (`lmaczs download tokenizer`, or --tokenizer-dir DIR)")
    return out
