"""``lmaczs fad``: Fréchet distance between two sets' CLAP audio embeddings."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command

HELP = """Fréchet distance between the CLAP audio-embedding distributions of two sets
(the data-set shift measure of the paper's Table 5).

A set is a folder of audio, a manifest CSV, or NAME:ROOT for a known data set.

Examples:

  lmaczs fad esc50:/data/ESC-50 clotho:/data/clotho

  lmaczs fad runs/synth/audio my_clips/ --clap small --json
"""


def register(app: typer.Typer) -> None:
    command(app, "fad", help=HELP, short_help="Fréchet distance between two audio sets.")(fad)


def fad(set_a: o.SetA, set_b: o.SetB, out: o.Out = Path("lmaczs-out"), *, shared: Shared) -> None:
    from lmaczs_cli.jobs.fad import FadConfig, run_fad

    rep = shared.reporter()
    row, failed = run_fad(FadConfig(set_a, set_b, out, shared.run), rep)
    if not shared.json_out:
        typer.echo(f"Fréchet distance ({row['model']}): {row['frechet_distance']:.4f}  "
                   f"[{row['n_a']} vs {row['n_b']} clips]")
    rep.info(f"wrote {out / 'fad.csv'}")
    if failed:
        raise typer.Exit(1)
