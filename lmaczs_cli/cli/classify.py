"""``lmaczs classify``: zero-shot top-k labels for clips."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c
from lmaczs_cli.cli import explain as e

HELP = """Zero-shot classification: rank prompts (or labels) for each clip.

Examples:

  lmaczs classify dog.wav --prompt "dog barking" --prompt "rain"

  lmaczs classify audio/ --labels esc50 --top-k 3 --out runs/cls --json
"""

COLUMNS = [
    "clip", "rank", "label", "prompt", "similarity", "probability", "status", "error",
]


def register(app: typer.Typer) -> None:
    app.command("classify", help=HELP, short_help="Zero-shot top-k labels for clips.")(classify)


@c.handle_errors()
def classify(
    inputs: e.InputsArg = None,
    prompt: e.PromptOpt = None,
    prompts_file: e.PromptsFileOpt = None,
    labels: e.LabelsOpt = None,
    prompt_template: e.TemplateOpt = "this is a sound of {label}",
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Labels per clip.")] = 5,
    files_from: e.FilesFromOpt = None,
    out: c.OutOpt = Path("lmaczs-out"),
    clap: c.ClapOpt = c.DEFAULT_CLAP,
    clap_ckpt: c.ClapCkptOpt = None,
    tokenizer_dir: c.TokenizerDirOpt = None,
    device: c.DeviceOpt = "auto",
    batch_size: c.BatchSizeOpt = 8,
    num_workers: c.NumWorkersOpt = 0,
    seed: c.SeedOpt = 0,
    precision: c.PrecisionOpt = "fp32",
    quiet: c.QuietOpt = False,
    json_out: c.JsonOpt = False,
    debug: c.DebugOpt = False,
) -> None:
    import torch

    from lmaczs_cli.inputs import collect_inputs
    from lmaczs_cli.outputs import print_json_line, write_csv_atomic
    from lmaczs_cli.pipeline import autocast, build_model, clip_batches, resolve_prompts
    from lmaczs_cli.progress import progress_bar

    torch.manual_seed(seed)
    paths = collect_inputs(inputs or [], files_from)
    prompts = resolve_prompts(prompt, prompts_file, labels, prompt_template)
    dev = c.resolve_device(device)
    model = build_model(clap, clap_ckpt, tokenizer_dir, dev, seed)
    text = model.embed_text([p.text for p in prompts])
    k = min(top_k, len(prompts))
    rows: list[dict] = []
    failed = 0
    with progress_bar(len(paths), "classify", quiet) as advance, torch.no_grad():
        for batch in clip_batches(paths, model, batch_size, num_workers):
            ok = [i for i, e in enumerate(batch["error"]) if e is None]
            for i, e in enumerate(batch["error"]):
                if e is not None:
                    failed += 1
                    c.err(f"lmaczs: {e}")
                    rows.append({"clip": batch["path"][i], "status": "error", "error": e})
            if ok:
                wave = batch["wave"][ok].to(dev)
                with autocast(dev, precision):
                    mag, _ = model.spectrogram(wave)
                    sims = model.encode(mag).embedding.float() @ text.float().T
                probs = torch.softmax(model.logit_scale * sims, dim=-1)
                top = probs.topk(k, dim=-1)
                for row_i, i in enumerate(ok):
                    for r in range(k):
                        j = int(top.indices[row_i, r])
                        rows.append({
                            "clip": batch["path"][i], "rank": r + 1, "label": prompts[j].label,
                            "prompt": prompts[j].text, "similarity": float(sims[row_i, j]),
                            "probability": float(top.values[row_i, r]), "status": "ok",
                        })
            advance(len(batch["error"]))
    if json_out:
        for row in rows:
            print_json_line({k_: row.get(k_) for k_ in COLUMNS if row.get(k_) is not None})
    csv_path = out / "classify.csv"
    write_csv_atomic(csv_path, rows, COLUMNS)
    if not quiet:
        _print_table(rows)
        c.err(f"wrote {csv_path}")
    if failed:
        c.err(f"lmaczs: {failed} of {len(paths)} inputs failed")
        raise typer.Exit(1)


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("clip", "rank", "label", "similarity", "probability")
    for r in rows:
        if r["status"] == "ok":
            table.add_row(
                Path(r["clip"]).name, str(r["rank"]), r["label"],
                f"{r['similarity']:.3f}", f"{r['probability']:.3f}",
            )
    Console(stderr=True, no_color=not c.use_color()).print(table)
