"""lmaczs: listenable maps for zero-shot audio classifiers (LMAC-ZS)."""

__version__ = "0.1.0"
