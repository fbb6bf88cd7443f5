"""``lmaczs report``: one self-contained report.html to listen to and read a run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command

HELP = """Write RUN_DIR/report.html: one page to listen to and read a run folder, that opens
in any browser with no server and no network (links are relative to the folder).

Explanations (explain, baseline): per clip the original and, per prompt and method, the
explanation and residual players, the map, s, s~, rank, mask mean; filter and sort them.
Evaluate: the summary table with 95% confidence intervals and the plots. Sanity-check:
the SSIM curves and the pass/fail line. At the top: the run records (model, checkpoint,
options) and every warning; a RANDOM WEIGHTS banner when a model had untrained weights.

Original clips are linked where they lie (relative links may climb out of RUN_DIR);
--copy-originals copies those outside RUN_DIR into RUN_DIR/originals/, so the folder can
be moved or shared.

Examples:

  lmaczs report lmaczs-out/demo

  lmaczs report runs/expl --copy-originals
"""


def register(app: typer.Typer) -> None:
    command(app, "report", help=HELP, short_help="Write report.html to listen to a run folder.",
            runs_model=False)(report)


def report(run_dir: o.RunDir, copy_originals: o.CopyOriginals = False, *, shared: Shared) -> None:
    from lmaczs_cli.report import write_report

    path = write_report(run_dir, copy_originals=copy_originals)
    shared.reporter().result({"report": str(path)})  # the JSON line with --json
    if not shared.json_out:
        typer.echo(str(path))


def also_report(wanted: bool, out: Path, shared: Shared) -> None:
    """``--report`` of explain, baseline, evaluate and sanity-check: write ``out/report.html``
    after the run. A page that cannot be written is a warning: the results themselves are safe."""
    if not wanted:
        return
    from lmaczs_cli.errors import LmaczsError
    from lmaczs_cli.report import write_report

    rep = shared.reporter()
    try:
        rep.info(f"wrote {write_report(out)}")
    except LmaczsError as e:
        rep.warn(f"report.html not written: {e}")
