"""The ``msclap`` package's *own* inference path, for parity checks and benchmarks.

:func:`package_wrapper` builds a real ``msclap.CLAPWrapper`` on an
:class:`~lmaczs_cli.models.msclap.model.MsClap`'s weights (saved to a checkpoint file the
wrapper reads itself), with only what would touch the network or is missing here
replaced:

- ``AutoModel.from_pretrained`` (text model download) -> the same architecture
  built from its config (:class:`lmaczs_cli.models.msclap.upstream._OfflineTextModel`);
- ``AutoTokenizer.from_pretrained`` -> the tokenizer given (loaded from local files);
- ``tokenizer.encode_plus`` (removed in transformers 5) -> ``tokenizer(text, ...)``,
  which is what it did for one string;
- ``torchaudio.load`` (needs torchcodec in torchaudio 2.9) -> a soundfile reader
  with the same output (float32 [channels, samples]).

Importing ``msclap`` runs ``warnings.filterwarnings("ignore")`` and
``transformers.logging.set_verbosity_error()``; both are undone right after.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import torch

from lmaczs_cli.models.msclap.upstream import _OfflineTextModel


def import_package() -> ModuleType:
    """``msclap.CLAPWrapper`` with its process-wide side effects undone."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    try:
        with warnings.catch_warnings():  # restores the filters it ignores everything with
            import msclap.CLAPWrapper as wrapper_module
    finally:
        hf_logging.set_verbosity(level)
    return wrapper_module


def _soundfile_load(path: Any, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, int]:
    """``torchaudio.load``'s result (float32 [C, N], sample rate) read with soundfile."""
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), int(sr)


class _TorchaudioShim(SimpleNamespace):
    """``torchaudio`` as the wrapper module sees it, with :func:`_soundfile_load` as ``load``."""

    def __getattr__(self, name: str) -> Any:
        import torchaudio

        return getattr(torchaudio, name)


def _with_encode_plus(tokenizer: Any) -> Any:
    if not hasattr(tokenizer, "encode_plus"):
        tokenizer.encode_plus = lambda text, **kw: tokenizer(text, **kw)
    return tokenizer


@contextlib.contextmanager
def _offline_downloads(module: ModuleType, tokenizer: Any) -> Iterator[None]:
    import msclap.models.clap as package_clap

    def no_hub(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the reference path must not download")

    saved = (package_clap.AutoModel, module.AutoTokenizer, module.hf_hub_download)
    package_clap.AutoModel = _OfflineTextModel
    module.AutoTokenizer = SimpleNamespace(from_pretrained=lambda *a, **k: tokenizer)
    module.hf_hub_download = no_hub
    try:
        yield
    finally:
        package_clap.AutoModel, module.AutoTokenizer, module.hf_hub_download = saved


def package_wrapper(model: Any, tokenizer: Any, checkpoint: Path) -> Any:
    """A real ``CLAPWrapper`` for ``model.version`` on ``model.clap``'s weights.

    ``tokenizer`` is what ``AutoTokenizer.from_pretrained`` returns (the wrapper adds
    GPT-2's pad token itself); ``checkpoint`` is where the weights are written as
    ``{"model": state_dict}``, the published format.
    """
    module = import_package()
    module.torchaudio = _TorchaudioShim(load=_soundfile_load)
    torch.save({"model": model.clap.state_dict()}, checkpoint)
    with _offline_downloads(module, _with_encode_plus(tokenizer)):
        return module.CLAPWrapper(str(checkpoint), version=model.version, use_cuda=False)
