"""Decoders that ship with lmaczs (only for the bundled small model): where they are, without torch."""

from __future__ import annotations

from pathlib import Path

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
