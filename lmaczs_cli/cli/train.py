"""``lmaczs train``: train an LMAC-ZS decoder for a zero-shot model (one device or torchrun DDP)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c

HELP = """Train an LMAC-ZS decoder: masks that keep the model's clip-prompt similarities.

Every (clip, caption) pair of a batch is used, matching or not. Writes
config.json, latest.pt, best.pt, log.jsonl and val.csv into --out; --resume
continues a killed or time-limited run exactly where its latest.pt stopped.

Examples:

  lmaczs train --data clotho --data-root /data/clotho --out runs/dec

  lmaczs train --clap small --data synth --steps 1500 --batch-size 12 --out runs/small

  lmaczs train --data esc50 --data-root /data/ESC-50 --data audiocaps --data-root /data/ac --out runs/mix

  torchrun --nproc_per_node 4 -m lmaczs_cli train --data clotho --data-root /data/clotho --out runs/ddp
"""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smh]?)\s*$")


def parse_duration(text: str | None) -> float | None:
    """``"90"``, ``"90s"``, ``"15m"``, ``"2h"`` -> seconds (None stays None)."""
    from lmaczs_cli.errors import UsageError

    if text is None:
        return None
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"--time-limit {text!r}: expected seconds or a number with s, m or h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def register(app: typer.Typer) -> None:
    app.command("train", help=HELP, short_help="Train an LMAC-ZS decoder (one device or torchrun DDP).")(
        train
    )


@c.handle_errors()
def train(
    data: Annotated[
        list[str] | None,
        typer.Option("--data", help="clotho, audiocaps, manifest, synth, esc50 or us8k (repeatable: mix)."),
    ] = None,
    data_root: Annotated[
        list[str] | None,
        typer.Option("--data-root", help="Root of each --data set, in order (manifest: the CSV)."),
    ] = None,
    prompt_template: Annotated[
        str,
        typer.Option("--prompt-template", help="Prompt for labelled sets (esc50, us8k, manifest labels)."),
    ] = "this is a sound of {label}",
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            help="Label set (esc50, esc10, us8k, synth or a file) whose prompts join every batch's prompts.",
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Length of the run (LR schedule).")] = 2000,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Stop at this step (continue with --resume).")
    ] = None,
    time_limit: Annotated[
        str | None,
        typer.Option("--time-limit", help="Stop after this long (e.g. 3600, 45m, 2h); --resume continues."),
    ] = None,
    val_every: Annotated[
        int, typer.Option("--val-every", min=0, help="Validate every N steps (0: at the end).")
    ] = 200,
    log_every: Annotated[
        int, typer.Option("--log-every", min=1, help="Log training losses every N steps.")
    ] = 10,
    save_every: Annotated[
        int | None,
        typer.Option("--save-every", min=1, help="Write latest.pt every N steps (default: --val-every)."),
    ] = None,
    val_size: Annotated[
        int, typer.Option("--val-size", min=2, help="At most this many validation clips per set.")
    ] = 256,
    val_fraction: Annotated[
        float,
        typer.Option("--val-fraction", min=0.0, max=0.5, help="Share of a file set held out for validation."),
    ] = 0.05,
    synth_scenes: Annotated[
        int, typer.Option("--synth-scenes", min=1, help="Training scenes of --data synth.")
    ] = 20000,
    mask_domain: Annotated[str, typer.Option("--mask-domain", help="stft (linear bins) or mel.")] = "stft",
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")] = 2e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 1e-4,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Linear warm-up steps, then cosine decay.")
    ] = 100,
    width: Annotated[int, typer.Option("--width", min=8, help="Decoder channels at the deepest stage.")] = 64,
    energy_gate: Annotated[
        bool,
        typer.Option("--energy-gate/--no-energy-gate", help="stft masks: per-bin gate on the clip's energy."),
    ] = True,
    lambda_l1: Annotated[
        float, typer.Option("--lambda-l1", min=0.0, help="Weight of L1 (what it averages: --l1-on).")
    ] = 0.035,
    lambda_tv: Annotated[
        float, typer.Option("--lambda-tv", min=0.0, help="Weight of total variation of M.")
    ] = 0.0,
    lambda_out: Annotated[
        float,
        typer.Option(
            "--lambda-out", min=0.0, help="Weight of relu(t.f((1-M)X)): what is removed must not match."
        ),
    ] = 0.3,
    out_pairs: Annotated[
        str,
        typer.Option("--out-pairs", help="L_out on 'own' (clip, caption) pairs or all 'matching' pairs."),
    ] = "matching",
    lambda_div: Annotated[
        float, typer.Option("--lambda-div", min=0.0, help="Weight of 1 - corr(mask mean, similarity).")
    ] = 0.15,
    l1_on: Annotated[
        str,
        typer.Option(
            "--l1-on",
            help="L1 averages the mask over 'power' (loud bins cost most), 'energy' or 'mask' (plain).",
        ),
    ] = "power",
    div_target: Annotated[
        str,
        typer.Option(
            "--div-target",
            help="L_div ties mask mean to 'centred' s (minus the clip's mean over prompts) or 's'.",
        ),
    ] = "centred",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from latest.pt.")
    ] = False,
    out: c.OutOpt = Path("lmaczs-out/train"),
    clap: c.ClapOpt = c.DEFAULT_CLAP,
    clap_ckpt: c.ClapCkptOpt = None,
    tokenizer_dir: c.TokenizerDirOpt = None,
    device: c.DeviceOpt = "auto",
    batch_size: c.BatchSizeOpt = 8,
    num_workers: c.NumWorkersOpt = 2,
    seed: c.SeedOpt = 0,
    precision: c.PrecisionOpt = "fp32",
    quiet: c.QuietOpt = False,
    debug: c.DebugOpt = False,
) -> None:
    from lmaczs_cli.errors import UsageError
    from lmaczs_cli.training import TrainConfig
    from lmaczs_cli.training import train as run_training

    if not data:
        raise UsageError("no training data: give --data SET (and --data-root DIR for file sets)")
    extra: list[str] = []
    if labels is not None:
        from lmaczs_cli.data.labels import load_labels, prompt_for

        if labels == "synth":
            from lmaczs_cli.data.synthetic import class_names

            names = class_names()
        else:
            names = load_labels(labels)
        extra = [prompt_for(n, prompt_template) for n in names]
    cfg = TrainConfig(
        out=str(out), clap=clap, clap_ckpt=clap_ckpt,
        tokenizer_dir=str(tokenizer_dir) if tokenizer_dir else None,
        data=list(data), data_root=list(data_root or []), prompt_template=prompt_template,
        extra_prompts=extra,
        val_fraction=val_fraction, val_size=val_size, synth_scenes=synth_scenes, steps=steps,
        max_steps=max_steps, time_limit=parse_duration(time_limit), val_every=val_every,
        log_every=log_every, save_every=save_every, batch_size=batch_size, num_workers=num_workers,
        seed=seed, precision=precision, device=device, lr=lr, weight_decay=weight_decay, warmup=warmup,
        mask_domain=mask_domain, width=width, energy_gate=energy_gate,
        weights={
            "l1": lambda_l1, "tv": lambda_tv, "out": lambda_out,
            "div": lambda_div, "out_pairs": out_pairs,
            "div_target": div_target, "l1_on": l1_on,
        },
        resume=resume, quiet=quiet,
    )
    result = run_training(cfg)
    if os.environ.get("RANK", "0") != "0":
        return
    if not quiet:
        c.err(f"step {result.step}: wrote {result.out / 'latest.pt'} and {result.out / 'best.pt'}")
    if result.failed:
        c.err(f"lmaczs: {result.failed} clips could not be read (skipped; named above)")
        raise typer.Exit(1)
