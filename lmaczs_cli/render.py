"""PNG figures: the explanation map (spectrogram, mask, masked spectrogram) and plots."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmaczs_cli.mapimage import (
    MAP_SIZE,  # noqa: F401  (the size of every explanation map)
    printable,
)
from lmaczs_cli.outputs import atomic_path

_DPI = 100


def _db(mag: np.ndarray) -> np.ndarray:
    p = 20.0 * np.log10(np.maximum(mag, 1e-8))
    return np.maximum(p, p.max() - 80.0)


def map_title(prompt: str, method: str, rank: int, model_name: str, similarity: float,
              masked: float | None) -> str:
    """A map's title: prompt, method, prompt rank, model, s and s~."""
    ms = "" if masked is None else f", masked s~ = {masked:.3f}"
    return (f'"{printable(prompt)}" — {method}, prompt rank {rank}, model {model_name}: '
            f"s = {similarity:.3f}{ms}")


def map_banner(model, in_domain: bool | None) -> str | None:
    """The warning drawn across a map: random weights, or a clip unlike the model's audio."""
    if getattr(model, "random_weights", False):
        return "RANDOM WEIGHTS: this map explains an untrained model"
    if in_domain is False:
        return f"OUT OF DOMAIN: this clip is unlike the audio {model.name} was trained on"
    return None


def render_map(
    path: Path | str,
    magnitude: np.ndarray,
    mask: np.ndarray,
    sample_rate: int,
    hop_length: int,
    title: str,
    banner: str | None = None,
    duration_s: float | None = None,
    activity: np.ndarray | None = None,
    segments: Sequence[Any] = (),
) -> Path:
    """Write the three-panel explanation PNG (atomically) and return its path.

    ``magnitude`` and ``mask`` are [F, T] on the same linear-frequency grid; ``banner``:
    a warning drawn across the top (e.g. random weights); ``duration_s``: the time axis
    length when the T columns are not frames (time-decimated maps of long clips). Drawn
    without matplotlib's figure machinery (:mod:`lmaczs_cli.mapimage`): milliseconds per map.
    ``activity`` [frames] and ``segments`` (:mod:`lmaczs_cli.events`): a timeline strip under the map.
    """
    from lmaczs_cli.mapimage import render_map_png

    return render_map_png(path, magnitude, mask, sample_rate, hop_length, title, banner, duration_s,
                          activity=activity, segments=segments)


def map_figure(magnitude: np.ndarray, mask: np.ndarray, sample_rate: int, hop_length: int, title: str,
               banner: str | None = None, duration_s: float | None = None):
    """The three-panel explanation map as a matplotlib ``Figure`` (1500 x 450 px; no pyplot state)."""
    from matplotlib.figure import Figure

    f, t = magnitude.shape
    seconds = t * hop_length / sample_rate if duration_s is None else duration_s
    extent = (0.0, seconds, 0.0, sample_rate / 2000.0)
    spec_db = _db(magnitude)
    masked_db = _db(magnitude * mask)
    vmin, vmax = spec_db.min(), spec_db.max()
    fig = Figure(figsize=(MAP_SIZE[0] / _DPI, MAP_SIZE[1] / _DPI), dpi=_DPI)
    axes = fig.subplots(1, 3, sharey=True)
    panels = [
        ("input spectrogram (dB)", spec_db, "magma", vmin, vmax),
        ("mask", mask, "viridis", 0.0, 1.0),
        ("masked spectrogram (dB)", masked_db, "magma", vmin, vmax),
    ]
    for ax, (name, img, cmap, lo, hi) in zip(axes, panels, strict=True):
        im = ax.imshow(img, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                       vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time (s)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    axes[0].set_ylabel("frequency (kHz)")
    fig.suptitle(title if not banner else f"{banner}\n{title}", fontsize=11,
                 color="firebrick" if banner else "black")
    with warnings.catch_warnings():  # glyphs missing from the font (emoji in prompts) draw as boxes
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.tight_layout()
    return fig


def _save(fig, path: Path | str) -> Path:
    with warnings.catch_warnings(), atomic_path(path, suffix=".part.png") as tmp:
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.savefig(tmp, dpi=_DPI, format="png")
    return Path(path)


def render_scatter(path: Path | str, points: list[dict]) -> Path:
    """Mask mean against similarity (paper Fig. 5): one panel per method (columns) and condition (rows)."""
    from matplotlib.figure import Figure

    methods = list(dict.fromkeys(p["method"] for p in points))
    conds = list(dict.fromkeys(p.get("condition", "clean") for p in points))
    fig = Figure(figsize=(4.2 * len(methods), 3.6 * len(conds)), dpi=_DPI)
    axes = fig.subplots(len(conds), len(methods), squeeze=False)
    for row, cond in zip(axes, conds, strict=True):
        for ax, meth in zip(row, methods, strict=True):
            pts = [p for p in points if p["method"] == meth and p.get("condition", "clean") == cond]
            s = np.array([float(p["similarity"]) for p in pts], dtype=float)
            m = np.array([float(p["mask_mean"]) for p in pts], dtype=float)
            ax.scatter(s, m, s=6, alpha=0.5)
            r = np.corrcoef(s, m)[0, 1] if len(s) > 2 and s.std() > 0 and m.std() > 0 else float("nan")
            ax.set_title(f"{meth}, {cond} (Pearson r = {r:.2f}, n = {len(s)})", fontsize=9)
            ax.set_xlabel("similarity s (prompt, clip)")
            ax.set_ylabel("mask mean")
            ax.set_ylim(-0.02, 1.02)
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.7 / w, right=1 - 0.2 / w, top=1 - 0.35 / h, bottom=0.6 / h,
                        wspace=0.7 / 4.2 * 2, hspace=1.0 / 3.6 * 2)
    return _save(fig, path)


def render_summary_bars(path: Path | str, summary: list[dict]) -> Path:
    """One bar chart per metric: methods side by side, one bar per condition, 95 % CI whiskers."""
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(r["metric"] for r in summary))
    methods = list(dict.fromkeys(r["method"] for r in summary))
    conds = list(dict.fromkeys(r["condition"] for r in summary))
    cols = min(4, len(metrics))
    rows_n = -(-len(metrics) // cols)
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows_n), dpi=_DPI)
    axes = fig.subplots(rows_n, cols, squeeze=False).ravel()
    width = 0.8 / max(len(conds), 1)
    for ax, metric in zip(axes, metrics, strict=False):
        by = {(r["method"], r["condition"]): r for r in summary if r["metric"] == metric}
        for k, cond in enumerate(conds):
            vals = [_cell(by.get((m, cond)), "mean") for m in methods]
            lo = [v - _cell(by.get((m, cond)), "ci_low") for v, m in zip(vals, methods, strict=True)]
            hi = [_cell(by.get((m, cond)), "ci_high") - v for v, m in zip(vals, methods, strict=True)]
            x = np.arange(len(methods)) + (k - (len(conds) - 1) / 2) * width
            # [2, n] below/above; a CI may not bracket the mean
            err = np.clip(np.nan_to_num(np.array([lo, hi], dtype=float)), 0, None)
            ax.bar(x, vals, width, yerr=err.tolist(), capsize=2, label=cond)  # lists: no warning at n=1
        ax.set_title(metric, fontsize=10)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle("mean and 95 % CI per method and condition", fontsize=11)
    # fixed margins (inches) instead of tight_layout, which measures every label (~0.4 s)
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.45 / w, right=1 - 0.15 / w, top=1 - 0.55 / h, bottom=0.75 / h,
                        wspace=0.35, hspace=0.75 if rows_n > 1 else 0.2)
    return _save(fig, path)


def _cell(row: dict | None, key: str) -> float:
    try:
        return float(row[key]) if row is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def render_ssim(path: Path | str, summary: list[dict], mode: str, pass_ssim: float | None = None,
                chance: dict[str, float] | None = None) -> Path:
    """SSIM to the intact model's explanation against the randomisation step, one line per method;
    ``pass_ssim``: the pass threshold, drawn as a dashed line; ``chance``: per method, the SSIM of
    two different clips' intact maps, drawn as a dotted line in the method's colour."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=_DPI)
    ax = fig.subplots()
    methods = list(dict.fromkeys(r["method"] for r in summary))
    ticks: list[str] = []
    for meth in methods:
        rs = sorted((r for r in summary if r["method"] == meth), key=lambda r: int(r["step"]))
        x = [int(r["step"]) for r in rs]
        (line,) = ax.plot(x, [float(r["mean"]) for r in rs], marker="o", label=meth)
        ax.fill_between(x, [float(r["ci_low"]) for r in rs], [float(r["ci_high"]) for r in rs], alpha=0.2)
        level = (chance or {}).get(meth)
        if level is not None and level == level:
            ax.axhline(level, color=line.get_color(), linestyle=":", linewidth=1,
                       label=f"{meth}: two clips' maps (chance)")
        if len(rs) > len(ticks):
            ticks = [r["block"] for r in rs]
    if pass_ssim is not None:
        ax.axhline(pass_ssim, color="firebrick", linestyle="--", linewidth=1)
        ax.text(0, pass_ssim + 0.02, f"pass: SSIM after the last block <= {pass_ssim}", color="firebrick",
                fontsize=8)
    ax.set_xticks(range(len(ticks)))
    ax.set_xticklabels(ticks, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel(f"randomised block ({mode}, from the output side)")
    ax.set_ylabel("SSIM to the intact model's map")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: never over the curves
    fig.tight_layout()
    return _save(fig, path)
