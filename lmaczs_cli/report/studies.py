"""What ``evaluate`` and ``sanity-check`` left in a folder, read for the page.

- evaluate: ``summary.csv`` (mean and 95 % CI per method x condition x metric) pivoted to one
  line per (method, condition), and ``mask_vs_similarity.png``;
- sanity-check: ``summary.json`` (SSIM curve, pass/fail per method), ``ssim.csv`` (the curve
  with CIs and block names) and ``ssim.png``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmaczs_cli.outputs import read_csv

#: metric -> (what it is, which way is better), as in docs/method.md
METRIC_NOTES = {
    "AI": ("Average Increase: % of clips whose class probability rises on the masked input", "higher"),
    "AD": ("Average Drop of the class probability on the masked input (%)", "lower"),
    "AG": ("Average Gain of the class probability on the masked input (%)", "higher"),
    "FF": ("faithfulness on spectra: P[c] minus P[c] with the map removed", "higher"),
    "FidIn": ("input fidelity: masked input keeps the predicted class", "higher"),
    "SPS": ("sparseness of the mask (Gini index)", "higher"),
    "COMP": ("complexity of the mask (entropy)", "lower"),
    "MM": ("mask mean", "reported"),
    "accuracy": ("the model's zero-shot accuracy on these clips", "higher"),
    "EPG": ("energy pointing game against the true mask", "higher"),
    "precision": ("energy-weighted mask precision against the true mask", "higher"),
    "recall": ("energy-weighted mask recall against the true mask", "higher"),
}


@dataclass
class Cell:
    """One summary number with its 95 % confidence interval and sample count."""

    mean: float | None
    low: float | None
    high: float | None
    n: str


@dataclass
class Evaluation:
    """summary.csv pivoted: metrics in order of appearance, one line per (method, condition)."""

    metrics: list[str] = field(default_factory=list)
    lines: list[tuple[str, str, dict[str, Cell]]] = field(default_factory=list)
    plot: Path | None = None


@dataclass
class Sanity:
    """summary.json's verdicts, the SSIM curve rows of ssim.csv and the plots."""

    pass_ssim: float | None = None
    methods: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, str]] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def curve_table(self) -> tuple[list[str], list[tuple[str, str, dict[str, Cell]]]]:
        """ssim.csv pivoted: the methods, and per randomisation step (step, block, {method: cell})."""
        methods: list[str] = []
        steps: dict[tuple[str, str], dict[str, Cell]] = {}
        for r in self.curve:
            if (r.get("metric") or "ssim") != "ssim":  # mask_mean_ratio rows share the steps
                continue
            m = r.get("method") or ""
            if m not in methods:
                methods.append(m)
            steps.setdefault((r.get("step") or "", r.get("block") or ""), {})[m] = cell(r)
        order = sorted(steps, key=lambda k: (number(k[0]) is None, number(k[0]) or 0.0, k[0]))
        return methods, [(step, block, steps[(step, block)]) for step, block in order]


def gather_evaluation(run_dir: Path) -> Evaluation | None:
    """The evaluate outputs in ``run_dir``, or None when there is no summary.csv."""
    table = run_dir / "summary.csv"
    if not table.is_file():
        return None
    ev = Evaluation()
    by_line: dict[tuple[str, str], dict[str, Cell]] = {}
    for r in read_csv(table):
        metric = r.get("metric") or ""
        if metric not in ev.metrics:
            ev.metrics.append(metric)
        cells = by_line.setdefault((r.get("method") or "", r.get("condition") or ""), {})
        cells[metric] = cell(r)
    ev.lines = [(m, c, cells) for (m, c), cells in by_line.items()]
    plot = run_dir / "mask_vs_similarity.png"
    ev.plot = plot if plot.is_file() and not (run_dir / "ssim.csv").is_file() else None
    return ev


def gather_sanity(run_dir: Path) -> Sanity | None:
    """The sanity-check outputs in ``run_dir``, or None when there are none."""
    summary, curve = run_dir / "summary.json", run_dir / "ssim.csv"
    if not summary.is_file() and not curve.is_file():
        return None
    san = Sanity(curve=read_csv(curve))
    if summary.is_file():
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
            san.pass_ssim = number(data.get("pass_ssim"))
            san.methods = [m for m in data.get("methods", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            san.problems.append("summary.json could not be read; pass/fail unknown")
    san.plots = [p for p in (run_dir / "ssim.png", run_dir / "mask_vs_similarity.png") if p.is_file()]
    return san


#: randomised maps whose mean is below this share of the intact maps' are said to vanish
VANISHED = 0.2


def verdict(method: dict[str, Any], limit: float | None) -> tuple[bool, str]:
    """(passed, the line ``lmaczs sanity-check`` prints) for one method of summary.json."""
    curve = [number(v) for v in method.get("ssim_curve") or []]
    last = curve[-1] if curve and curve[-1] is not None else math.nan
    passed = bool(method.get("passed"))
    bound = f"{limit:.2f}" if limit is not None else "?"
    levels = method.get("mask_mean_ratio_curve") or []
    level = number(levels[-1]) if levels else None
    if level is None:  # no ratio: empty intact maps, NaN masks, or an older summary.json without it
        ratio = "; no mask-mean ratio (the intact maps are empty, or the masks are NaN)" if levels else ""
    else:
        ratio = f"; mask mean {level:.2f} x the intact maps'"
        if level < VANISHED:
            ratio += "; the randomised maps are nearly empty, so the SSIM says little about their shape"
    return passed, (f"{method.get('method', '?')}: {'passed' if passed else 'FAILED'} the randomisation "
                    f"test (SSIM after the last block {last:.2f}, must be <= {bound}{ratio})")


def chance_line(method: dict[str, Any]) -> str | None:
    """What the similarities would be with no shape kept, and whether the maps keep theirs; None for
    a summary.json without the chance levels (an older run) or without a ranking (constant maps)."""
    ranks = [number(v) for v in method.get("rank_corr_curve") or []]
    chance, kept = number(method.get("rank_corr_chance")), method.get("shape_kept")
    ci = [number(v) for v in method.get("rank_corr_above_chance_ci") or [None, None]]
    if not ranks or ranks[-1] is None or chance is None or kept is None or None in ci:
        return None
    ssim_chance, empty = number(method.get("ssim_chance")), number(method.get("ssim_empty_map"))
    ssim = (f"SSIM {ssim_chance:.2f} to another clip's map, {empty:.2f} to an empty map; "
            if ssim_chance is not None and empty is not None else "")
    shape = ("the randomised maps keep the intact maps' shape beyond chance" if kept
             else "no more of the intact maps' shape than chance")
    return (f"  chance levels: {ssim}rank correlation {ranks[-1]:.2f} after the last block, {chance:.2f} "
            f"between two clips' maps: {shape} (margin {ci[0] + 0:.2f} to {ci[1] + 0:.2f}, 95 % CI)")


def evidence_split_line(method: dict[str, Any]) -> str | None:
    """The last step split by whether the randomised model still hears evidence in the clip: how
    much each group's maps fade and how much shape they keep; None without the split (older runs)."""
    split = method.get("last_step_by_evidence")
    if not isinstance(split, dict):
        return None
    parts = []
    for key, what in (("heard", "where the randomised model still hears the prompt"),
                      ("hears_nothing", "where it hears nothing")):
        g = split.get(key) or {}
        n = int(number(g.get("n")) or 0)
        if not n:
            parts.append(f"{what}: no clips")
            continue
        ratio, rank = number(g.get("mask_mean_ratio")), number(g.get("rank_corr"))
        ci = [number(v) for v in g.get("rank_corr_above_chance_ci") or [None, None]]
        text = f"{what} ({n} clips): mask mean " + (
            f"{ratio:.2f} x intact (median)" if ratio is not None else "n/a")
        if rank is not None:
            text += f", rank correlation {rank:.2f}"
        if None not in ci:
            text += f" (margin over chance {ci[0] + 0:.2f} to {ci[1] + 0:.2f}, 95 % CI)"
        parts.append(text)
    return "  after the last block, " + "; ".join(parts)


def evidence_line(methods: list[dict[str, Any]]) -> str | None:
    """How often the intact and the fully randomised model hear no evidence in the clip (an empty
    clip matches the prompt as well as the clip); None for a summary.json without it (older runs)."""
    curve = next((m.get("empty_keeps_s_curve") for m in methods if m.get("empty_keeps_s_curve")), None)
    ends = [number(v) for v in (curve[0], curve[-1])] if curve and len(curve) > 1 else [None]
    if None in ends:
        return None
    return (f"evidence: an empty clip matches the explained prompt at least as well as the clip on "
            f"{100 * ends[0]:.0f} % of clips with the intact model and {100 * ends[1]:.0f} % after the last "
            "block; there the model hears nothing in the clip, so a faithful map of it may fade")


def cell(row: dict[str, str]) -> Cell:
    """The mean, CI and n of one summary row (summary.csv, ssim.csv)."""
    return Cell(number(row.get("mean")), number(row.get("ci_low")), number(row.get("ci_high")),
                row.get("n") or "")


def number(value: Any) -> float | None:
    """A finite float, or None (empty cells, NaN, text)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
