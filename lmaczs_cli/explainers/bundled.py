"""Decoders that ship with lmaczs (only for the bundled small model): where they are, without torch."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"


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
