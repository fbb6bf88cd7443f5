"""``lmaczs baseline``: the same outputs as ``explain`` from GradCAM, GradCAM++, SmoothGrad or IG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c
from lmaczs_cli.cli import explain as e

HELP = """Explain with a baseline saliency method instead of LMAC-ZS (same WAV, PNG and CSV outputs).

Methods: gradcam, gradcam++ (last feature map of the audio encoder), smoothgrad,
ig (input spectrogram, via captum). Target: the zero-shot logit of the prompt.

Examples:

  lmaczs baseline --method ig clip.wav --prompt "siren"

  lmaczs baseline --method gradcam++ audio/ --labels esc50 --top-k 1 --out runs/gcpp
"""

BASELINES = ("gradcam", "gradcam++", "smoothgrad", "ig")


def register(app: typer.Typer) -> None:
    app.command("baseline", help=HELP, short_help="Explanations from baseline saliency methods.")(baseline)


@c.handle_errors()
def baseline(
    method: Annotated[str, typer.Option("--method", "-m", help="gradcam, gradcam++, smoothgrad or ig.")],
    inputs: e.InputsArg = None,
    prompt: e.PromptOpt = None,
    prompts_file: e.PromptsFileOpt = None,
    labels: e.LabelsOpt = None,
    prompt_template: e.TemplateOpt = "this is a sound of {label}",
    top_k: e.TopKOpt = None,
    files_from: e.FilesFromOpt = None,
    out: c.OutOpt = Path("lmaczs-out"),
    residual: e.ResidualOpt = False,
    save_mask: e.SaveMaskOpt = False,
    no_score: e.NoScoreOpt = False,
    resume: e.ResumeOpt = False,
    fail_fast: e.FailFastOpt = False,
    ig_steps: Annotated[int, typer.Option("--ig-steps", min=2, help="Integrated Gradients steps.")] = 50,
    smoothgrad_samples: Annotated[
        int, typer.Option("--smoothgrad-samples", min=1, help="SmoothGrad noisy samples.")
    ] = 25,
    smoothgrad_noise: Annotated[
        float, typer.Option("--smoothgrad-noise", help="SmoothGrad noise, fraction of the input range.")
    ] = 0.15,
    clap: c.ClapOpt = c.DEFAULT_CLAP,
    clap_ckpt: c.ClapCkptOpt = None,
    tokenizer_dir: c.TokenizerDirOpt = None,
    device: c.DeviceOpt = "auto",
    batch_size: c.BatchSizeOpt = 4,
    num_workers: c.NumWorkersOpt = 0,
    seed: c.SeedOpt = 0,
    quiet: c.QuietOpt = False,
    json_out: c.JsonOpt = False,
    debug: c.DebugOpt = False,
) -> None:
    from lmaczs_cli.errors import UsageError
    from lmaczs_cli.explain_run import ExplainOptions, run_explain

    if method not in BASELINES:
        raise UsageError(f"--method {method!r}: expected one of {', '.join(BASELINES)}")
    opts = ExplainOptions(
        inputs=inputs or [], prompt=prompt, prompts_file=prompts_file, labels=labels,
        prompt_template=prompt_template, top_k=top_k, files_from=files_from, out=out,
        residual=residual, save_mask=save_mask, score=not no_score, resume=resume,
        fail_fast=fail_fast, method=method,
        method_options={"steps": ig_steps} if method == "ig" else (
            {"samples": smoothgrad_samples, "noise": smoothgrad_noise} if method == "smoothgrad" else {}),
        clap=clap, clap_ckpt=clap_ckpt, tokenizer_dir=tokenizer_dir, device=device,
        batch_size=batch_size, num_workers=num_workers, seed=seed, precision="fp32",
        quiet=quiet, json_out=json_out,
    )
    if run_explain(opts):
        raise typer.Exit(1)
