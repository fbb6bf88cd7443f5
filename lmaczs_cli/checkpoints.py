"""Decoder checkpoints: atomic saves, ``weights_only`` loads, refusal of mismatched decoders.

A checkpoint is a dict of tensors and plain Python values only::

    {"format": "lmaczs-decoder", "format_version": 1, "lmaczs_version": "0.1.0",
     "spec_id": model.spec_id(), "mask_domain": "stft", "decoder_config": {...},
     "decoder": state_dict, "metrics": {...},
     "train_state": {...}}            # latest.pt only: optimizer, scheduler, step, RNG

so ``torch.load(path, weights_only=True)`` reads it without executing code. A decoder also
travels as a folder (safetensors weights, ``config.json``, model card) or ``hf:ORG/REPO[@REV]``
from the Hugging Face cache: :func:`read_decoder` reads all three (see
:mod:`lmaczs_cli.decoder_hub`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lmaczs_cli import __version__
from lmaczs_cli.errors import UsageError
from lmaczs_cli.explainers.decoder import DecoderConfig, MaskDecoder
from lmaczs_cli.outputs import atomic_path

FORMAT = "lmaczs-decoder"
FORMAT_VERSION = 1


def decoder_payload(
    decoder: MaskDecoder, spec_id: dict[str, Any], metrics: dict[str, float] | None = None,
    training: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict for ``decoder`` trained for a model with ``spec_id``.

    ``training``: the data it was trained on (``{"data", "root", "folds"}`` per set), so
    ``evaluate`` can warn when it scores the decoder on clips it has seen.
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lmaczs_version": __version__,
        "spec_id": dict(spec_id),
        "mask_domain": decoder.config.domain,
        "decoder_config": decoder.config.to_dict(),
        "decoder": {k: v.detach().cpu() for k, v in decoder.state_dict().items()},
        "metrics": dict(metrics or {}),
        "training": [dict(t) for t in training or []],
    }


def save_checkpoint(path: Path | str, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (old file or new file, never half of one)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a decoder checkpoint with ``weights_only=True``; clear errors for bad files."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: decoder checkpoint not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise UsageError(f"{p}: not a loadable decoder checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UsageError(f"{p}: not an lmaczs decoder checkpoint")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise UsageError(
            f"{p}: checkpoint format {ckpt['format_version']} is newer than this lmaczs "
            f"({__version__}) reads; upgrade lmaczs"
        )
    return ckpt


def read_decoder(source: Path | str) -> dict[str, Any]:
    """The checkpoint dict of a ``--decoder`` value: a ``.pt`` file, a decoder folder or
    ``hf:ORG/REPO[@REV]`` (local Hugging Face cache only). Folders are read with safetensors
    after their weights digest is checked; nothing is unpickled."""
    from lmaczs_cli import decoder_hub as hub

    if hub.is_hub_id(source):
        return hub.read_folder(hub.hub_folder(str(source)), str(source))
    if Path(source).is_dir():
        return hub.read_folder(Path(source))
    return read_checkpoint(source)


def describe_spec(spec: dict[str, Any]) -> str:
    """One-line description of a model's input grid, for messages."""
    return (
        f"{spec.get('model')!r} ({spec.get('sample_rate')} Hz, n_fft {spec.get('n_fft')}, "
        f"hop {spec.get('hop_length')}, {spec.get('n_mels')} mels, {spec.get('n_frames')} frames)"
    )


def check_compatible(
    ckpt: dict[str, Any], spec_id: dict[str, Any], domain: str | None = None, path: Path | str = ""
) -> None:
    """Refuse (``UsageError``) a decoder trained for another model, grid or mask domain."""
    theirs = ckpt.get("spec_id", {})
    if dict(theirs) != dict(spec_id):
        raise UsageError(
            f"{path}: decoder was trained for model {describe_spec(theirs)}, "
            f"not for {describe_spec(spec_id)}; train one for this model with 'lmaczs train'"
        )
    if domain is not None and ckpt.get("mask_domain") != domain:
        raise UsageError(
            f"{path}: decoder masks the {ckpt.get('mask_domain')!r} domain, "
            f"but mask domain {domain!r} was asked for"
        )


def load_decoder(path: Path | str, model: Any, domain: str | None = None) -> MaskDecoder:
    """Rebuild the decoder saved at ``path`` (file, folder or ``hf:`` id) for ``model``, refusing
    a mismatched one."""
    ckpt = read_decoder(path)
    check_compatible(ckpt, model.spec_id(), domain, path)
    return decoder_from_checkpoint(ckpt, model, path)


def decoder_from_checkpoint(ckpt: dict[str, Any], model: Any, path: Path | str = "") -> MaskDecoder:
    """Build a decoder from an already-read, already-checked checkpoint dict."""
    cfg = DecoderConfig.from_dict(ckpt["decoder_config"])
    dec = MaskDecoder(cfg, model.mel_filterbank())
    try:
        dec.load_state_dict(ckpt["decoder"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UsageError(f"{path}: decoder weights do not fit this model's hidden maps ({first})") from None
    dec.trained_on = list(ckpt.get("training") or [])  # the data it was trained on ([]: unknown)
    return dec.to(model.device)
