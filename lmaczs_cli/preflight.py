"""Before any heavy work: is everything a run needs on this machine? One message for all that is not.

A real CLAP needs its checkpoint, its text tokenizer and, to explain with LMAC-ZS, a decoder
trained for it (none can be bundled). Each is looked up without building anything (no torch
for LAION, HF and MS-CLAP 2022), and a run that lacks any of them stops with one line naming
every missing piece and the command that supplies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lmaczs_cli.errors import UsageError

GUIDE = 'README "Explaining a real CLAP"'
#: what training a decoder costs, measured (benchmarks/bench_train.py; GPU: benchmarks/bench_gpu.py)
TRAIN_COST = ("training one takes hours on a GPU and days on a CPU (CPU here: about 30-40 s per step "
              "at batch 4 for LAION HTSAT-tiny and MS-CLAP 2022)")


def _model_missing(clap: str, ckpt: str | None, tokenizer_dir: Path | None) -> list[str]:
    """What the model itself lacks: checkpoint and tokenizer files (its family's record says how
    to look, :mod:`lmaczs_cli.models.families`)."""
    from lmaczs_cli.models.families import family_of

    family = family_of(clap)
    return [] if family is None else family.missing(clap, ckpt, tokenizer_dir)


def _decoder_missing(clap: str, methods: Iterable[str],
                     options: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """An LMAC-ZS decoder for the model, when LMAC-ZS is among the methods."""
    if "lmaczs" not in methods:
        return []
    from lmaczs_cli import decoder_hub as hub
    from lmaczs_cli.explainers.bundled import bundled_decoder, check_mask_domain

    opts = options.get("lmaczs", {})
    check_mask_domain(opts.get("mask_domain"))
    given = opts.get("decoder")
    if given is not None:
        problem = hub.source_problem(given)
        return [problem] if problem else []
    if bundled_decoder(clap, opts.get("mask_domain")) is not None:
        return []
    if hub.registered_for_clap(clap, opts.get("mask_domain")) is not None:
        return []  # registered for a model of this name; its weights are matched once it is loaded
    from lmaczs_cli.jobs.train.presets import preset_for_model

    preset = preset_for_model(clap) or "laion"
    domain = opts.get("mask_domain")
    bundled = f"no {domain}-domain decoder is bundled for --clap {clap}" if domain else "none is bundled"
    flag = f" --mask-domain {domain}" if domain else ""
    return [f"an LMAC-ZS decoder trained for {clap} ({bundled}: `lmaczs train --clap {clap} "
            f"--preset {preset}{flag} --data clotho --data-root DIR --out runs/dec`, which makes it the "
            f"default, or `lmaczs download decoder hf:ORG/REPO`; {TRAIN_COST})"]


#: what per-clip LMAC-ZS costs, measured (benchmarks/bench_perclip.py)
PERCLIP_COST = ("at most 50 optimisation steps of about 4 encodes' time each per clip and prompt: "
                "about 1 min for LAION HTSAT-tiny on one CPU thread, `--perclip-steps` to change")
#: the methods that explain any model with its weights alone
NO_DECODER_METHODS = "lmaczs-perclip, gradcam, gradcam++, smoothgrad, ig"


def lacks_decoder(clap: str, options: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when LMAC-ZS has no decoder for ``clap``: none given with --decoder, bundled or cached."""
    opts = options.get("lmaczs", {})
    return opts.get("decoder") is None and bool(_decoder_missing(clap, ["lmaczs"], options))


def _offline_hint(clap: str, ckpt: str | None) -> str | None:
    """How to try lmaczs offline now: the bundled models (their family records say which) or
    random weights; None when this run is already one of those."""
    from lmaczs_cli.models.families import family_of, list_families

    family = family_of(clap)
    if (family is not None and family.bundled) or str(ckpt) == "random":
        return None
    bundled = [p for f in list_families() if f.bundled for p in f.patterns if "*" not in p]
    return "to try lmaczs offline now: " + "".join(f"--clap {n} (bundled) or " for n in bundled) + \
        "--clap-ckpt random"


def check_ready(command: str, run: Any, methods: Iterable[str] = (),
                method_options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Raise one usage error listing everything ``command`` would lack for ``run``; do nothing if ready."""
    from lmaczs_cli.models.registry import check_known

    check_known(run.clap)
    missing = _model_missing(run.clap, run.clap_ckpt, run.tokenizer_dir)
    no_decoder = _decoder_missing(run.clap, methods, method_options or {})
    missing += no_decoder
    if not missing:
        return
    items = "; ".join(f"({i}) {m}" for i, m in enumerate(missing, start=1))
    hints = []
    if no_decoder:
        hints.append("without a decoder: `lmaczs explain` (without --require-decoder) explains each clip "
                     f"by per-clip LMAC-ZS (slower), and these methods need none: {NO_DECODER_METHODS}")
    offline = _offline_hint(run.clap, run.clap_ckpt)
    if offline:
        hints.append(offline)
    extra = "".join(f"; {h}" for h in hints)
    raise UsageError(f"cannot {command} with --clap {run.clap} yet: missing {items}. "
                     f"Step by step: {GUIDE}{extra}")
