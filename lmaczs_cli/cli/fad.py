"""``lmaczs fad``: Fréchet distance between two sets' CLAP audio embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.cli import common as c

HELP = """Fréchet distance between the CLAP audio-embedding distributions of two sets
(the data-set shift measure of the paper's Table 5).

A set is a folder of audio, a manifest CSV, or NAME:ROOT for a known data set.

Examples:

  lmaczs fad esc50:/data/ESC-50 clotho:/data/clotho

  lmaczs fad runs/synth/audio my_clips/ --clap small --json
"""


def register(app: typer.Typer) -> None:
    app.command("fad", help=HELP, short_help="Fréchet distance between two audio sets.")(fad)


@c.handle_errors()
def fad(
    set_a: Annotated[str, typer.Argument(help="First set: folder, manifest CSV or NAME:ROOT.")],
    set_b: Annotated[str, typer.Argument(help="Second set.")],
    out: c.OutOpt = Path("lmaczs-out"),
    clap: c.ClapOpt = c.DEFAULT_CLAP,
    clap_ckpt: c.ClapCkptOpt = None,
    tokenizer_dir: c.TokenizerDirOpt = None,
    device: c.DeviceOpt = "auto",
    batch_size: c.BatchSizeOpt = 8,
    num_workers: c.NumWorkersOpt = 0,
    seed: c.SeedOpt = 0,
    quiet: c.QuietOpt = False,
    json_out: c.JsonOpt = False,
    debug: c.DebugOpt = False,
) -> None:
    from lmaczs_cli.fad import embed_files, resolve_set
    from lmaczs_cli.metrics import frechet_distance
    from lmaczs_cli.outputs import print_json_line, write_csv_atomic
    from lmaczs_cli.pipeline import build_model

    files_a, files_b = resolve_set(set_a), resolve_set(set_b)
    model = build_model(clap, clap_ckpt, tokenizer_dir, c.resolve_device(device), seed)
    ea, err_a = embed_files(model, files_a, batch_size, num_workers)
    eb, err_b = embed_files(model, files_b, batch_size, num_workers)
    for e in err_a + err_b:
        c.err(f"lmaczs: {e}")
    d = frechet_distance(ea, eb)
    row = {"set_a": set_a, "set_b": set_b, "n_a": len(ea), "n_b": len(eb), "model": clap,
           "frechet_distance": d}
    write_csv_atomic(out / "fad.csv", [row], list(row))
    if json_out:
        print_json_line(row)
    if not quiet:
        c.err(f"Fréchet distance ({clap}): {d:.4f}  [{len(ea)} vs {len(eb)} clips] -> {out / 'fad.csv'}")
    if err_a or err_b:
        raise typer.Exit(1)
