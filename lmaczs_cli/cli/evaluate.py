"""``lmaczs evaluate``: faithfulness metrics of explanation methods on a labelled data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c

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
    app.command("evaluate", help=HELP, short_help="Faithfulness metrics on a data set.")(evaluate)


DatasetOpt = Annotated[str, typer.Option("--dataset", help="esc50, us8k, synth or manifest.")]
DataRootOpt = Annotated[
    Path | None, typer.Option("--data-root", help="The data set's folder (manifest: the CSV).")
]
FoldsOpt = Annotated[str | None, typer.Option("--folds", help="Folds, e.g. 5 or 1-4 or 1,3.")]
MethodOpt = Annotated[
    list[str] | None,
    typer.Option("--method", "-m", help="lmaczs, gradcam, gradcam++, smoothgrad or ig (repeatable)."),
]


@c.handle_errors()
def evaluate(
    dataset: DatasetOpt,
    data_root: DataRootOpt = None,
    method: MethodOpt = None,
    condition: Annotated[
        list[str] | None,
        typer.Option("--condition", help="clean, esc50-mix, white-noise or speech:DIR (repeatable)."),
    ] = None,
    folds: FoldsOpt = None,
    esc10: Annotated[bool, typer.Option("--esc10", help="ESC-10 subset of ESC-50.")] = False,
    split: Annotated[str | None, typer.Option("--split", help="Split of a manifest.")] = None,
    max_samples: Annotated[
        int | None, typer.Option("--max-samples", min=1, help="Evaluate a seeded subset of N clips.")
    ] = None,
    prompt_template: Annotated[
        str, typer.Option("--prompt-template", help="Template turning a label into a prompt.")
    ] = "this is a sound of {label}",
    mask_domain: Annotated[
        str | None, typer.Option("--mask-domain", help="LMAC-ZS decoder domain: stft or mel.")
    ] = None,
    ig_steps: Annotated[int, typer.Option("--ig-steps", min=2, help="Integrated Gradients steps.")] = 50,
    smoothgrad_samples: Annotated[
        int, typer.Option("--smoothgrad-samples", min=1, help="SmoothGrad noisy samples.")
    ] = 25,
    smoothgrad_noise: Annotated[
        float, typer.Option("--smoothgrad-noise", help="SmoothGrad noise, fraction of the input range.")
    ] = 0.15,
    plots: Annotated[bool, typer.Option("--plots", help="Mask mean vs similarity figure.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Keep finished rows of samples.csv.")] = False,
    out: c.OutOpt = Path("lmaczs-out/eval"),
    clap: c.ClapOpt = c.DEFAULT_CLAP,
    clap_ckpt: c.ClapCkptOpt = None,
    tokenizer_dir: c.TokenizerDirOpt = None,
    decoder: c.DecoderOpt = None,
    device: c.DeviceOpt = "auto",
    batch_size: c.BatchSizeOpt = 8,
    num_workers: c.NumWorkersOpt = 0,
    seed: c.SeedOpt = 0,
    precision: c.PrecisionOpt = "fp32",
    quiet: c.QuietOpt = False,
    json_out: c.JsonOpt = False,
    debug: c.DebugOpt = False,
) -> None:
    from lmaczs_cli.data.registry import parse_folds
    from lmaczs_cli.evaluation import EvalOptions, run_evaluate

    methods = list(dict.fromkeys(method or ["lmaczs"]))
    opts = EvalOptions(
        dataset=dataset, data_root=data_root, out=out, methods=methods,
        conditions=list(dict.fromkeys(condition or ["clean"])), folds=parse_folds(folds), esc10=esc10,
        split=split, max_samples=max_samples, prompt_template=prompt_template,
        method_options=method_options(decoder, mask_domain, ig_steps, smoothgrad_samples,
                                      smoothgrad_noise),
        resume=resume, plots=plots, clap=clap, clap_ckpt=clap_ckpt, tokenizer_dir=tokenizer_dir,
        device=device, batch_size=batch_size, num_workers=num_workers, seed=seed, precision=precision,
        quiet=quiet, json_out=json_out,
    )
    if run_evaluate(opts):
        raise typer.Exit(1)


def method_options(decoder, mask_domain, ig_steps, smoothgrad_samples, smoothgrad_noise) -> dict:
    """Per-method factory options from the CLI flags."""
    return {
        "lmaczs": {"decoder": decoder, "mask_domain": mask_domain},
        "ig": {"steps": ig_steps},
        "smoothgrad": {"samples": smoothgrad_samples, "noise": smoothgrad_noise},
    }
