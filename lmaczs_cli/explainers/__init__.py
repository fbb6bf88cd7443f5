"""Explainers: methods that turn (clip, prompt) pairs into masks over the spectrogram.

Import-light: the registry names are available without importing torch-heavy
implementations (``create_explainer`` imports the one asked for).
"""

from lmaczs_cli.explainers.base import create_explainer, list_explainers, register_explainer

__all__ = ["create_explainer", "list_explainers", "register_explainer"]
