"""Where a model's LMAC-ZS decoder is, without torch: the one given, the one registered for the
model's weights, or the one shipped with lmaczs (only for the bundled small model)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: the domains a decoder's mask can live in: linear STFT bins or mel bands
DOMAINS = ("stft", "mel")


def check_mask_domain(domain: str | None) -> None:
    """Refuse a ``--mask-domain`` that is not one of :data:`DOMAINS` (``None``: the decoder's own)."""
    if domain is not None and domain not in DOMAINS:
        from lmaczs_cli.errors import UsageError

        raise UsageError(f"--mask-domain {domain!r}: expected one of {', '.join(DOMAINS)}")


def bundled_decoder_name(domain: str | None = None) -> str:
    """File name of a bundled decoder: ``decoder.pt`` (stft, the default) or ``decoder_mel.pt``."""
    return "decoder.pt" if domain in (None, "stft") else f"decoder_{domain}.pt"


def default_decoder_path(model_name: str, domain: str | None = None) -> Path:
    """Where the decoder bundled for ``model_name`` (and mask ``domain``) lives (it may not exist)."""
    return ASSETS / model_name / bundled_decoder_name(domain)


def bundled_decoder(model_name: str, domain: str | None = None) -> Path | None:
    """The bundled decoder for ``model_name`` and ``domain``, if there is one."""
    path = default_decoder_path(model_name, domain)
    return path if path.is_file() else None


def find_decoder(model: Any, decoder: str | os.PathLike[str] | None, domain: str | None) -> tuple[str, str]:
    """(what to load, what run records name) for ``--decoder`` value ``decoder``.

    ``None``: the decoder registered for the model's weights (``lmaczs train``, ``lmaczs download
    decoder``), else the bundled one; a one-line usage error when there is neither.
    """
    from lmaczs_cli import decoder_hub as hub
    from lmaczs_cli.errors import UsageError

    if decoder is not None:
        if hub.is_hub_id(decoder):
            return str(decoder), str(hub.hub_folder(str(decoder)))
        return str(decoder), str(Path(decoder).resolve())
    spec = model.spec_id()
    weights = hub.model_weights_digest(model)
    found = hub.registered(spec, weights, domain) or bundled_decoder(model.name, domain)
    if found is not None:
        return str(found), str(Path(found).resolve())
    what = f"{domain}-domain decoder" if domain else "decoder"
    if weights is None:
        why = "none is registered for random weights"
    elif hub.registered_models(spec):
        why = f"the registered ones are for other {model.name} weights than these ({weights[:16]})"
    else:
        why = "none is registered for its weights"
    raise UsageError(
        f"no {what} is bundled for --clap {model.name} and {why}; train one with 'lmaczs train' "
        "(it registers it) or pass one with --decoder FILE.pt|DIR|hf:ORG/REPO"
    )
