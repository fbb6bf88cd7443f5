"""The small family's record (:mod:`lmaczs_cli.models.families`): bundled weights, nothing to download."""

from lmaczs_cli.models.records import Family

FAMILY = Family(
    "small", ("small",), "small (bundled, offline: a small CLAP-style model of a synthetic world)",
    preset="small", bundled=True,
    domain_note="the bundled small model knows only its synthetic world of 10 event classes",
)
