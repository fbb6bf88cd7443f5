"""``lmaczs sanity-check``: cascading model randomisation (SSIM) and prompt sensitivity."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command, method_options, print_table
from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE

HELP = """Sanity checks of explanation methods (Adebayo et al. 2018; paper Fig. 3, 5).

Cascading randomisation re-initialises the audio encoder's blocks from the top
down and measures SSIM between each method's explanation and the intact
model's (a faithful method's SSIM falls quickly; a method passes when the SSIM
after the last block is at most 0.25). Beside each verdict it prints the chance
levels: the SSIM to another clip's map and to an empty map (sparse maps score high
against any sparse map), and the Spearman rank correlation to the intact maps
with its chance level, which says whether the maps keep their shape (shape_kept
in summary.json), and on how many clips an empty clip matches the prompt as well
as the clip (the randomised model hears no evidence there, so a faithful map may
fade: empty_keeps_s_curve). After the last block it splits the clips by that flag
and prints, for each group, how far the maps fade and how much shape they keep: a
faithful map fades where the randomised model hears nothing and changes shape
where it still hears something (last_step_by_evidence). Prompt sensitivity compares maps for
the predicted prompt with maps for unrelated prompts and relates mask mean to
similarity. The model's weights are restored after every step.

Examples:

  lmaczs sanity-check --dataset esc50 --data-root /data/ESC-50 --method lmaczs --method gradcam++

  lmaczs sanity-check --dataset synth --data-root runs/synth --clap small --mode independent
"""


def register(app: typer.Typer) -> None:
    command(app, "sanity-check", help=HELP, short_help="Model-randomisation and prompt checks.")(sanity_check)


def sanity_check(
    dataset: o.Dataset,
    data_root: o.DataRoot = None,
    method: o.Methods = None,
    mode: o.Mode = "cascading",
    granularity: o.Granularity = "stage",
    max_samples: o.MaxSamples = 32,
    wrong_prompts: o.WrongPrompts = 3,
    folds: o.Folds = None,
    esc10: o.Esc10 = False,
    split: o.Split = None,
    labels: o.EvalLabels = None,
    prompt_template: o.PromptTemplate = DEFAULT_TEMPLATE,
    decoder: o.Decoder = None,
    mask_domain: o.MaskDomain = None,
    ig_steps: o.IgSteps = 50,
    smoothgrad_samples: o.SmoothgradSamples = 25,
    smoothgrad_noise: o.SmoothgradNoise = 0.15,
    perclip_steps: o.PerclipSteps = None,
    report: o.Report = False,
    out: o.Out = Path("lmaczs-out/sanity"),
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.data.registry import DataSelection, parse_folds
    from lmaczs_cli.jobs.sanity import SanityConfig, run_sanity

    summary = run_sanity(SanityConfig(
        data=DataSelection(dataset, data_root, parse_folds(folds), esc10, split, max_samples,
                           shared.run.seed, labels),
        out=out, methods=list(dict.fromkeys(method or ["lmaczs"])), mode=mode, granularity=granularity,
        wrong_prompts=wrong_prompts, prompt_template=prompt_template,
        method_options=method_options(decoder, mask_domain, ig_steps, smoothgrad_samples, smoothgrad_noise,
                                      perclip_steps),
        run=shared.run,
    ), shared.reporter())
    from lmaczs_cli.cli.report import also_report

    also_report(report, out, shared)
    if not shared.json_out:
        print_sanity(summary)


def print_sanity(summary: dict) -> None:
    """The checks as a table on stdout, then the pass/fail line and the chance levels per method."""
    from lmaczs_cli.report.studies import chance_line, evidence_line, evidence_split_line, verdict

    def curve(r: dict, key: str) -> str:
        return " ".join(f"{v:.2f}" for v in r.get(key) or [])

    rows = [[r["method"], curve(r, "ssim_curve"), curve(r, "mask_mean_ratio_curve"),
             curve(r, "rank_corr_curve"), f"{r['ssim_true_vs_wrong_prompt']:.3f}",
             f"{r['corr_mask_mean_similarity']:.3f}"]
            for r in summary["methods"]]
    print_table("sanity checks", ["method", "SSIM per randomisation step (0 = intact)",
                                  "mask mean / intact per step", "rank correlation per step",
                                  "SSIM true vs wrong prompt", "corr(mask mean, s)"], rows)
    for r in summary["methods"]:
        typer.echo(verdict(r, summary["pass_ssim"])[1])
        for line in (chance_line(r), evidence_split_line(r)):
            if line:
                typer.echo(line)
    evidence = evidence_line(summary["methods"])
    if evidence:
        typer.echo(evidence)
