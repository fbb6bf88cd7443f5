"""``lmaczs sanity-check``: cascading model randomisation (SSIM) and prompt sensitivity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c
from lmaczs_cli.cli import evaluate as ev
from lmaczs_cli.cli.evaluate import method_options

HELP = """Sanity checks of explanation methods (Adebayo et al. 2018; paper Fig. 3, 5).

Cascading randomisation re-initialises the audio encoder's blocks from the top
down and measures SSIM between each method's explanation and the intact
model's (a faithful method's SSIM falls quickly). Prompt sensitivity compares
maps for the predicted prompt with maps for unrelated prompts and relates mask
mean to similarity. The model's weights are restored after every step.

Examples:

  lmaczs sanity-check --dataset esc50 --data-root /data/ESC-50 --method lmaczs --method gradcam++

  lmaczs sanity-check --dataset synth --data-root runs/synth --clap small --mode independent
"""


def register(app: typer.Typer) -> None:
    app.command("sanity-check", help=HELP, short_help="Model-randomisation and prompt checks.")(
        sanity_check
    )


@c.handle_errors()
def sanity_check(
    dataset: ev.DatasetOpt,
    data_root: ev.DataRootOpt = None,
    method: ev.MethodOpt = None,
    mode: Annotated[
        str, typer.Option("--mode", help="cascading (top-down, cumulative) or independent.")
    ] = "cascading",
    granularity: Annotated[
        str, typer.Option("--granularity", help="LAION: randomise whole Swin stages or single blocks.")
    ] = "stage",
    max_samples: Annotated[int, typer.Option("--max-samples", min=1, help="Clips to check.")] = 32,
    wrong_prompts: Annotated[
        int, typer.Option("--wrong-prompts", min=1, help="Unrelated prompts per clip.")
    ] = 3,
    folds: ev.FoldsOpt = None,
    prompt_template: Annotated[
        str, typer.Option("--prompt-template", help="Template turning a label into a prompt.")
    ] = "this is a sound of {label}",
    ig_steps: Annotated[int, typer.Option("--ig-steps", min=2, help="Integrated Gradients steps.")] = 50,
    smoothgrad_samples: Annotated[
        int, typer.Option("--smoothgrad-samples", min=1, help="SmoothGrad noisy samples.")
    ] = 25,
    out: c.OutOpt = Path("lmaczs-out/sanity"),
    clap: c.ClapOpt = c.DEFAULT_CLAP,
    clap_ckpt: c.ClapCkptOpt = None,
    tokenizer_dir: c.TokenizerDirOpt = None,
    decoder: c.DecoderOpt = None,
    mask_domain: Annotated[
        str | None, typer.Option("--mask-domain", help="LMAC-ZS decoder domain: stft or mel.")
    ] = None,
    device: c.DeviceOpt = "auto",
    batch_size: c.BatchSizeOpt = 8,
    seed: c.SeedOpt = 0,
    quiet: c.QuietOpt = False,
    json_out: c.JsonOpt = False,
    debug: c.DebugOpt = False,
) -> None:
    from lmaczs_cli.data.registry import parse_folds
    from lmaczs_cli.errors import UsageError
    from lmaczs_cli.sanity import SanityOptions, run_sanity

    if mode not in ("cascading", "independent"):
        raise UsageError(f"--mode {mode!r}: expected cascading or independent")
    run_sanity(SanityOptions(
        dataset=dataset, data_root=data_root, out=out, methods=list(dict.fromkeys(method or ["lmaczs"])),
        mode=mode, granularity=granularity, max_samples=max_samples, wrong_prompts=wrong_prompts,
        folds=parse_folds(folds), prompt_template=prompt_template,
        method_options=method_options(decoder, mask_domain, ig_steps, smoothgrad_samples, 0.15),
        clap=clap, clap_ckpt=clap_ckpt, tokenizer_dir=tokenizer_dir, device=device,
        batch_size=batch_size, seed=seed, quiet=quiet, json_out=json_out,
    ))
