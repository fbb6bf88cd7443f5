"""``lmaczs baseline``: the same outputs as ``explain`` from GradCAM, GradCAM++, SmoothGrad or IG."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command, method_options
from lmaczs_cli.cli.explain import explain_fields, run_explain_command
from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE

HELP = """Explain with baseline saliency methods instead of LMAC-ZS (same WAV, PNG and CSV outputs).

Methods: gradcam, gradcam++ (last feature map of the audio encoder), smoothgrad,
ig (input spectrogram, via captum), lmaczs-perclip (LMAC-ZS without a decoder: each mask
optimised for its clip and prompt), the trivial references all-ones, empty and
random-rectangle, and sliding-window (the similarity of 1 s windows, hop 0.25 s: time only);
repeat --method for several in one run.
Target: the zero-shot logit of the prompt.

Examples:

  lmaczs baseline --method ig clip.wav --prompt "siren"

  lmaczs baseline --method gradcam --method gradcam++ audio/ --labels esc50 --top-k 1 --out runs/cam
"""

BASELINES = ("gradcam", "gradcam++", "smoothgrad", "ig", "lmaczs-perclip", "all-ones", "empty",
             "random-rectangle", "sliding-window")


def register(app: typer.Typer) -> None:
    command(app, "baseline", help=HELP, short_help="Explanations from baseline saliency methods.",
            defaults={"batch_size": 4})(baseline)


def baseline(
    method: o.BaselineMethods,
    inputs: o.Inputs = None,
    prompt: o.Prompt = None,
    prompts_file: o.PromptsFile = None,
    labels: o.Labels = None,
    prompt_template: o.PromptTemplate = DEFAULT_TEMPLATE,
    top_k: o.TopK = None,
    files_from: o.FilesFrom = None,
    out: o.Out = Path("lmaczs-out"),
    residual: o.Residual = False,
    save_mask: o.SaveMask = False,
    no_score: o.NoScore = False,
    resume: o.Resume = False,
    fail_fast: o.FailFast = False,
    ig_steps: o.IgSteps = 50,
    smoothgrad_samples: o.SmoothgradSamples = 25,
    smoothgrad_noise: o.SmoothgradNoise = 0.15,
    perclip_steps: o.PerclipSteps = None,
    report: o.Report = False,
    shard: o.Shard = None,
    no_maps: o.NoMaps = False,
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.errors import UsageError

    methods = list(dict.fromkeys(method))
    for m in methods:
        if m not in BASELINES:
            raise UsageError(f"--method {m!r}: expected one of {', '.join(BASELINES)}")
    options = method_options(None, None, ig_steps, smoothgrad_samples, smoothgrad_noise, perclip_steps)
    run_explain_command(shared, methods, options, report, **explain_fields(
        inputs, prompt, prompts_file, labels, prompt_template, top_k, files_from, out, residual,
        save_mask, no_score, resume, fail_fast), shard=shard, maps=not no_maps)
