"""``lmaczs train``: train an LMAC-ZS decoder for a zero-shot model (one device or torchrun DDP)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command
from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE

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


def _with_preset(ctx: typer.Context, preset: str | None, values: dict) -> dict:
    """``values`` with the preset's settings where the command line left an option at its default."""
    from lmaczs_cli.jobs.train.presets import preset_values

    if preset is None:
        return values
    for key, value in preset_values(preset).items():
        source = ctx.get_parameter_source(key)  # typer vendors click: compare by name
        if getattr(source, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            values[key] = value
    return values


def _config(v: dict, shared: Shared):
    """The ``TrainConfig`` of the command line's values."""
    from lmaczs_cli.data.prompts import check_template, label_prompts, load_labels
    from lmaczs_cli.data.registry import parse_folds
    from lmaczs_cli.jobs.train import TrainConfig

    check_template(v["prompt_template"])
    extra = label_prompts(load_labels(v["labels"]), v["prompt_template"]) if v["labels"] is not None else []
    run = shared.run
    same = ("prompt_template", "val_fraction", "val_size", "synth_scenes", "steps", "max_steps", "val_every",
            "log_every", "save_every", "batch_size", "num_workers", "lr", "weight_decay", "warmup",
            "mask_domain", "width", "energy_gate", "sim_input", "decoder_skip", "feature_norm", "gate_source",
            "select", "resume", "preset")
    return TrainConfig(
        out=str(v["out"]), clap=run.clap, clap_ckpt=run.clap_ckpt,
        tokenizer_dir=str(run.tokenizer_dir) if run.tokenizer_dir else None,
        data=list(v["data"]), data_root=list(v["data_root"] or []), folds=parse_folds(v["folds"]),
        exclude_folds=parse_folds(v["exclude_folds"], "--exclude-folds"), extra_prompts=extra,
        time_limit=parse_duration(v["time_limit"]), seed=run.seed, precision=run.precision, device=run.device,
        weights={"l1": v["lambda_l1"], "tv": v["lambda_tv"], "out": v["lambda_out"], "div": v["lambda_div"],
                 "out_pairs": v["out_pairs"], "div_target": v["div_target"], "l1_on": v["l1_on"],
                 "absent": v["lambda_absent"], "sim_loss": v["sim_loss"], "sim_margin": v["sim_margin"],
                 "out_ref": v["out_ref"], "l1_mask": v["lambda_l1_mask"], "cls": v["lambda_cls"]},
        quiet=shared.quiet, **{k: v[k] for k in same},
    )


def _make_default(result, rep) -> None:
    """Register the run's best.pt as the default decoder for the model's weights (and say so)."""
    from lmaczs_cli.jobs.decoder_export import register_source

    if result.best_step is None or not (result.out / "best.pt").is_file():
        return
    folder, why = register_source(result.out)
    if folder is None:
        rep.info(f"not made the default decoder ({why}): pass it with --decoder {result.out / 'best.pt'}")
        return
    rep.info(f"registered as the default decoder for this model's weights ({folder}): explain, "
             "evaluate and sanity-check use it when no --decoder is given")


def register(app: typer.Typer) -> None:
    command(app, "train", help=HELP, short_help="Train an LMAC-ZS decoder (one device or torchrun DDP).",
            defaults={"num_workers": 2})(train)


def train(
    ctx: typer.Context,
    data: o.Data = None,
    data_root: o.DataRoots = None,
    preset: o.Preset = None,
    folds: o.TrainFolds = None,
    exclude_folds: o.ExcludeFolds = None,
    prompt_template: o.PromptTemplate = DEFAULT_TEMPLATE,
    labels: o.TrainLabels = None,
    steps: o.Steps = 2000,
    max_steps: o.MaxSteps = None,
    time_limit: o.TimeLimit = None,
    val_every: o.ValEvery = 200,
    log_every: o.LogEvery = 10,
    save_every: o.SaveEvery = None,
    val_size: o.ValSize = 256,
    val_fraction: o.ValFraction = 0.05,
    synth_scenes: o.SynthScenes = 20000,
    mask_domain: o.TrainMaskDomain = "stft",
    lr: o.Lr = 2e-3,
    weight_decay: o.WeightDecay = 1e-4,
    warmup: o.Warmup = 100,
    width: o.Width = 64,
    energy_gate: o.EnergyGate = True,
    sim_input: o.SimilarityInput = True,
    decoder_skip: o.DecoderSkip = 0,
    feature_norm: o.FeatureNorm = False,
    gate_source: o.GateSource = "prompt",
    lambda_l1: o.LambdaL1 = 0.035,
    lambda_tv: o.LambdaTv = 0.0,
    lambda_out: o.LambdaOut = 0.3,
    out_pairs: o.OutPairs = "matching",
    lambda_div: o.LambdaDiv = 0.15,
    l1_on: o.L1On = "power",
    div_target: o.DivTarget = "centred",
    lambda_absent: o.LambdaAbsent = 0.0,
    lambda_l1_mask: o.LambdaL1Mask = 0.0,
    lambda_cls: o.LambdaCls = 0.0,
    sim_loss: o.SimLoss = "symmetric",
    sim_margin: o.SimMargin = 0.0,
    out_ref: o.OutRef = "batch",
    select: o.Select = "val",
    resume: o.TrainResume = False,
    out: o.Out = Path("lmaczs-out/train"),
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.errors import UsageError

    if not data:
        raise UsageError("no training data: give --data SET (and --data-root DIR for file sets)")
    values = {k: v for k, v in locals().items() if k not in ("ctx", "shared", "UsageError")}
    values.update(batch_size=shared.run.batch_size, num_workers=shared.run.num_workers)
    cfg = _config(_with_preset(ctx, preset, values), shared)
    rep = shared.reporter()
    from lmaczs_cli.jobs.train import train as run_training

    result = run_training(cfg, reporter=rep)
    if os.environ.get("RANK", "0") != "0":
        return
    wrote = [result.out / "latest.pt"]
    if result.best_step is not None:
        wrote.append(result.out / "best.pt")
    kept = "" if result.best_step is not None else " (best.pt unchanged: no better validation loss)"
    rep.info(f"step {result.step}: wrote {' and '.join(map(str, wrote))}{kept}")
    _make_default(result, rep)
    rep.result({"step": result.step, **result.val, "best_val_loss": result.best_val_loss,
                "best_step": result.best_step, "out": str(result.out)})
    if result.failed:
        rep.notice(f"lmaczs: {result.failed} clips could not be read (skipped; named above)")
        raise typer.Exit(1)
