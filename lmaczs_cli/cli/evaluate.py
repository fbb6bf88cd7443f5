"""``lmaczs evaluate``: faithfulness metrics of explanation methods on a labelled data set."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command, method_options, print_table
from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE

HELP = """Faithfulness of explanations (AI, AD, AG, FF, Fid-In, SPS, COMP, MM) and the model's
zero-shot accuracy, per method and condition, with bootstrap 95% CIs.

Writes samples.csv (one row per clip x method x condition, with the raw
probabilities behind every metric) and summary.csv, and prints the table.

Examples:

  lmaczs evaluate --dataset esc50 --data-root /data/ESC-50 --folds 5 --method lmaczs --method gradcam++

  lmaczs evaluate --dataset us8k --data-root /data/UrbanSound8K --condition clean --condition white-noise

  lmaczs evaluate --dataset synth --data-root runs/synth --clap small --plots
"""


def register(app: typer.Typer) -> None:
    command(app, "evaluate", help=HELP, short_help="Faithfulness metrics on a data set.")(evaluate)


def evaluate(
    dataset: o.Dataset,
    data_root: o.DataRoot = None,
    method: o.Methods = None,
    condition: o.Conditions = None,
    folds: o.Folds = None,
    esc10: o.Esc10 = False,
    split: o.Split = None,
    max_samples: o.MaxSamples = None,
    labels: o.EvalLabels = None,
    prompt_template: o.PromptTemplate = DEFAULT_TEMPLATE,
    decoder: o.Decoder = None,
    mask_domain: o.MaskDomain = None,
    ig_steps: o.IgSteps = 50,
    smoothgrad_samples: o.SmoothgradSamples = 25,
    smoothgrad_noise: o.SmoothgradNoise = 0.15,
    perclip_steps: o.PerclipSteps = None,
    plots: o.Plots = False,
    resume: o.Resume = False,
    report: o.Report = False,
    shard: o.Shard = None,
    out: o.Out = Path("lmaczs-out/eval"),
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.data.registry import DataSelection, parse_folds
    from lmaczs_cli.jobs.evaluate import EvalConfig, run_evaluate

    cfg = EvalConfig(
        data=DataSelection(dataset, data_root, parse_folds(folds), esc10, split, max_samples,
                           shared.run.seed, labels),
        out=out, methods=list(dict.fromkeys(method or ["lmaczs"])),
        conditions=list(dict.fromkeys(condition or ["clean"])), prompt_template=prompt_template,
        method_options=method_options(decoder, mask_domain, ig_steps, smoothgrad_samples, smoothgrad_noise,
                                      perclip_steps),
        resume=resume, plots=plots, shard=shard, run=shared.run,
    )
    from lmaczs_cli.cli.report import also_report

    result = run_evaluate(cfg, shared.reporter())
    if result is None:  # a torchrun rank other than 0
        return
    also_report(report, out, shared)
    if not shared.json_out:
        print_summary(result.summary)
    if result.failed:
        raise typer.Exit(1)


def print_summary(summary: list[dict]) -> None:
    """The summary as a table (mean ± half the 95% CI) on stdout."""
    import math

    metrics = list(dict.fromkeys(r["metric"] for r in summary))
    groups: dict[tuple, dict] = {}
    for r in summary:
        groups.setdefault((r["method"], r["condition"]), {})[r["metric"]] = r
    rows = []
    for (meth, cond), d in groups.items():
        cells = []
        for m in metrics:
            r = d.get(m)
            mean = float(r["mean"]) if r is not None else math.nan
            half = (float(r["ci_high"]) - float(r["ci_low"])) / 2 if r is not None else math.nan
            cells.append("-" if not math.isfinite(mean) else f"{mean:.3g} ±{half:.2g}")
        n = max((int(float(r["n"])) for r in d.values() if r.get("n") not in (None, "")), default=0)
        rows.append([meth, cond, str(n), *cells])
    print_table("faithfulness: mean ± half the 95% CI (exact bounds in summary.csv)",
                ["method", "condition", "n", *metrics], rows)
