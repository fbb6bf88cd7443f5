"""``report.html``: one self-contained page to listen to and read a run folder.

:func:`write_report` reads whatever the folder holds (explain/baseline ``results.csv``,
evaluate ``summary.csv``, sanity-check ``summary.json``/``ssim.csv``, the run records
``runs.jsonl``/``run.json``) and writes ``report.html`` beside it: inline CSS and JS, no
network, links relative to the folder. Modules: ``links`` (finding recorded files),
``provenance`` (run records), ``explanations`` (results.csv), ``studies`` (evaluate,
sanity-check), ``html`` (the page).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from lmaczs_cli.errors import UsageError
from lmaczs_cli.report.explanations import Explanations, gather_explanations
from lmaczs_cli.report.links import Resolver
from lmaczs_cli.report.provenance import Runs, read_runs
from lmaczs_cli.report.studies import Evaluation, Sanity, gather_evaluation, gather_sanity

REPORT_NAME = "report.html"
#: tables and records linked under "Files" when present
KNOWN_FILES = ("results.csv", "summary.csv", "samples.csv", "mask_vs_similarity.csv", "summary.json",
               "ssim.csv", "ssim_samples.csv", "prompt_sensitivity.csv", "classify.csv", "fad.csv",
               "run.json", "runs.jsonl")


@dataclass
class Report:
    """Everything the page shows about one folder."""

    run_dir: Path
    runs: Runs
    explanations: Explanations | None = None
    evaluation: Evaluation | None = None
    sanity: Sanity | None = None
    files: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    generated: str = ""

    @property
    def empty(self) -> bool:
        return not (self.explanations or self.evaluation or self.sanity or self.runs.records)

    @property
    def random_weights(self) -> list[str]:
        """Why the RANDOM WEIGHTS banner shows: one line per run (or table) with random weights."""
        why = [f"run {r.get('run_id', '?')} ({r.get('command', '?')}, model "
               f"{(r.get('model') or {}).get('name', '?')})" for r in self.runs.random_weight_runs]
        known = {r.get("run_id") for r in self.runs.random_weight_runs}
        rows = self.explanations.rows if self.explanations else []
        loose = sorted({r["run_id"] or "(no run id)" for r in rows
                        if r["checkpoint"] == "random" and r["run_id"] not in known})
        return why + [f"results.csv rows of run {rid} (checkpoint 'random')" for rid in loose]


def gather(run_dir: Path, copy_originals: bool = False) -> Report:
    """Read ``run_dir`` into a :class:`Report` (a usage error when it is not a folder)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise UsageError(f"{run_dir}: is a file; give the run's folder ({run_dir.parent})")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such folder")
    runs = read_runs(run_dir)
    resolver = Resolver(run_dir, runs.cwds())
    rep = Report(run_dir, runs, gather_explanations(run_dir, resolver, copy_originals),
                 gather_evaluation(run_dir), gather_sanity(run_dir),
                 files=[f for f in KNOWN_FILES if (run_dir / f).is_file()],
                 generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    rep.notices = _notices(rep)
    return rep


def count(n: int, noun: str) -> str:
    """``1 clip``, ``2 clips``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _notices(rep: Report) -> list[str]:
    """What the reader should know that no run warned about."""
    notes = list(rep.runs.problems)
    if not rep.runs.records:
        notes.append("No run record (run.json): this folder was written by an lmaczs without run records, "
                     "so the model, checkpoint and options behind it are unknown.")
    ex = rep.explanations
    if ex is not None:
        if ex.n_missing:
            notes.append(f"{count(ex.n_missing, 'explanation')} with files missing (moved or deleted): "
                         "shown without players.")
        lost = sum(1 for c in ex.clips if c["original"] is None and not c["failed"])
        if lost:
            notes.append(f"{count(lost, 'original clip')} cannot be played here (each clip says why).")
    if rep.sanity is not None:
        notes += rep.sanity.problems
    return notes


def write_report(run_dir: Path | str, copy_originals: bool = False) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    ``copy_originals`` copies original clips that lie outside ``run_dir`` (or that browsers
    cannot play) into ``run_dir/originals/``, so the folder plays anywhere once moved.
    Raises :class:`UsageError` when the folder holds nothing to report and
    :class:`~lmaczs_cli.outdir.OutputError` when the page cannot be written.
    """
    from lmaczs_cli.outdir import locked, write_failure
    from lmaczs_cli.outputs import write_text_atomic
    from lmaczs_cli.report.html import render

    run_dir = Path(run_dir)
    path = run_dir / REPORT_NAME
    try:
        # runs finishing together into one folder: each reads and writes under this lock, after its
        # own rows are in the tables, so the page written last holds every run's rows
        with locked(run_dir / f".{REPORT_NAME}.lock") if run_dir.is_dir() else contextlib.nullcontext():
            rep = gather(run_dir, copy_originals)
            if rep.empty:
                raise UsageError(f"{run_dir}: nothing to report (no results.csv, summary.csv, summary.json, "
                                 "ssim.csv or run.json)")
            write_text_atomic(path, render(rep))
    except OSError as e:  # read-only folder, full disk: one line, exit 1
        raise write_failure(path, e) from None
    return path
