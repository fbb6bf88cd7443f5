"""Zero-shot models behind one interface (see ``base.ZeroShotModel``)."""

from lmaczs_cli.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
