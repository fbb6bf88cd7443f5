"""``lmaczs explain``: listenable explanations (WAV + PNG map + CSV row) per clip and prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c

HELP = """Explain why the zero-shot model matches each clip to each prompt.

Per (clip, prompt) it writes a folder with the listenable explanation
(explanation.wav: the masked audio at the clip's own rate and length), the
map (map.png: spectrogram, mask, masked spectrogram) and a row in results.csv.

Examples:

  lmaczs explain clip.wav --prompt "dog barking"

  lmaczs explain audio/ --labels esc50 --top-k 3 --out runs/expl

  find data -name '*.wav' | lmaczs explain --files-from - --prompt siren --json
"""


def register(app: typer.Typer) -> None:
    app.command("explain", help=HELP, short_help="Listenable explanations with LMAC-ZS.")(explain)


# Options shared with `lmaczs baseline` (which passes its own --method).
InputsArg = Annotated[list[Path] | None, typer.Argument(help="Audio files or folders (recursive).")]
PromptOpt = Annotated[list[str] | None, typer.Option("--prompt", "-p", help="A prompt (repeatable).")]
PromptsFileOpt = Annotated[
    Path | None, typer.Option("--prompts-file", help="File with one prompt per line.")
]
LabelsOpt = Annotated[
    str | None,
    typer.Option("--labels", help="Label set esc50, us8k or FILE (with --top-k: explain the top K)."),
]
TemplateOpt = Annotated[
    str, typer.Option("--prompt-template", help="Template turning a label into a prompt.")
]
TopKOpt = Annotated[
    int | None,
    typer.Option("--top-k", "-k", min=1, help="Explain the K prompts the model ranks highest per clip."),
]
FilesFromOpt = Annotated[
    str | None, typer.Option("--files-from", help="File listing inputs, one per line; - for stdin.")
]
ResidualOpt = Annotated[bool, typer.Option("--residual", help="Also write what the mask removed.")]
SaveMaskOpt = Annotated[bool, typer.Option("--save-mask", help="Also write the mask as .npy.")]
NoScoreOpt = Annotated[bool, typer.Option("--no-score", help="Skip the masked-similarity pass.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Skip (clip, prompt) pairs already done.")]
FailFastOpt = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first bad input.")]


@c.handle_errors()
def explain(
    inputs: InputsArg = None,
    prompt: PromptOpt = None,
    prompts_file: PromptsFileOpt = None,
    labels: LabelsOpt = None,
    prompt_template: TemplateOpt = "this is a sound of {label}",
    top_k: TopKOpt = None,
    files_from: FilesFromOpt = None,
    out: c.OutOpt = Path("lmaczs-out"),
    residual: ResidualOpt = False,
    save_mask: SaveMaskOpt = False,
    no_score: NoScoreOpt = False,
    resume: ResumeOpt = False,
    fail_fast: FailFastOpt = False,
    mask_domain: Annotated[
        str | None, typer.Option("--mask-domain", help="stft or mel (default: the decoder's).")
    ] = None,
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
    from lmaczs_cli.explain_run import ExplainOptions, run_explain

    opts = ExplainOptions(
        inputs=inputs or [], prompt=prompt, prompts_file=prompts_file, labels=labels,
        prompt_template=prompt_template, top_k=top_k, files_from=files_from, out=out,
        residual=residual, save_mask=save_mask, score=not no_score, resume=resume,
        fail_fast=fail_fast, method="lmaczs", method_options={"decoder": decoder,
                                                              "mask_domain": mask_domain},
        clap=clap, clap_ckpt=clap_ckpt, tokenizer_dir=tokenizer_dir, device=device,
        batch_size=batch_size, num_workers=num_workers, seed=seed, precision=precision,
        quiet=quiet, json_out=json_out,
    )
    failed = run_explain(opts)
    if failed:
        raise typer.Exit(1)
