"""``lmaczs explain``: listenable explanations (WAV + PNG map + CSV row) per clip and prompt."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command, method_options
from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE

HELP = """Explain why the zero-shot model matches each clip to each prompt.

Per (clip, prompt) it writes a folder with the listenable explanation
(explanation.wav: the masked audio at the clip's own rate and length), the
map (map.png: spectrogram, mask, masked spectrogram) and a row in results.csv.

Examples:

  lmaczs explain clip.wav --prompt "dog barking"

  lmaczs explain audio/ --labels esc50 --top-k 3 --out runs/expl

  find data -name '*.wav' | lmaczs explain --files-from - --prompt siren --json

A model with no LMAC-ZS decoder (none bundled, given or trained) is explained per
clip (method lmaczs-perclip: slower, no training); --require-decoder refuses instead.
"""


def register(app: typer.Typer) -> None:
    command(app, "explain", help=HELP, short_help="Listenable explanations with LMAC-ZS.")(explain)


def explain(
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
    decoder: o.Decoder = None,
    mask_domain: o.MaskDomain = None,
    report: o.Report = False,
    require_decoder: o.RequireDecoder = False,
    perclip_steps: o.PerclipSteps = None,
    shard: o.Shard = None,
    no_maps: o.NoMaps = False,
    *,
    shared: Shared,
) -> None:
    options = method_options(decoder, mask_domain, perclip_steps=perclip_steps)
    run_explain_command(shared, ["lmaczs"], options, report, **explain_fields(
        inputs, prompt, prompts_file, labels, prompt_template, top_k, files_from, out, residual,
        save_mask, no_score, resume, fail_fast), require_decoder=require_decoder, shard=shard,
        maps=not no_maps)


def explain_fields(inputs, prompt, prompts_file, labels, prompt_template, top_k, files_from, out, residual,
              save_mask, no_score, resume, fail_fast) -> dict:
    """The explain/baseline options as ExplainConfig fields."""
    return dict(inputs=inputs or [], prompt=prompt, prompts_file=prompts_file, labels=labels,
                prompt_template=prompt_template, top_k=top_k, files_from=files_from, out=out,
                residual=residual, save_mask=save_mask, score=not no_score, resume=resume,
                fail_fast=fail_fast)


def run_explain_command(shared: Shared, methods: list[str], options: dict, report: bool, **fields) -> None:
    """Run the explain job for ``methods`` (and write report.html); exit 1 when some inputs failed."""
    from lmaczs_cli.cli.report import also_report
    from lmaczs_cli.jobs.explain import ExplainConfig, run_explain

    cfg = ExplainConfig(methods=methods, method_options=options, run=shared.run, **fields)
    result = run_explain(cfg, shared.reporter())
    also_report(report, cfg.out, shared)
    if result.failed:
        raise typer.Exit(1)
