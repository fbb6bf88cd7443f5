"""PNG figures: the explanation map (spectrogram, mask, masked spectrogram) and plots."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lmaczs_cli.outputs import atomic_path

#: explanation map size in pixels (width, height)
MAP_SIZE = (1500, 450)
_DPI = 100


def _db(mag: np.ndarray) -> np.ndarray:
    p = 20.0 * np.log10(np.maximum(mag, 1e-8))
    return np.maximum(p, p.max() - 80.0)


def render_map(
    path: Path | str,
    magnitude: np.ndarray,
    mask: np.ndarray,
    sample_rate: int,
    hop_length: int,
    title: str,
    duration_s: float | None = None,
) -> Path:
    """Write the three-panel explanation PNG (atomically) and return its path.

    ``magnitude`` and ``mask`` are [F, T] on the same linear-frequency grid;
    ``duration_s``: the time axis length when T columns are not frames (time-decimated maps).
    """
    fig = map_figure(magnitude, mask, sample_rate, hop_length, title, duration_s)
    with warnings.catch_warnings(), atomic_path(path, suffix=".part.png") as tmp:
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.savefig(tmp, dpi=_DPI, format="png")
    return Path(path)


def map_figure(magnitude: np.ndarray, mask: np.ndarray, sample_rate: int, hop_length: int, title: str,
               duration_s: float | None = None):
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
    fig.suptitle(title, fontsize=11)
    with warnings.catch_warnings():  # glyphs missing from the font (emoji in prompts) draw as boxes
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.tight_layout()
    return fig


def render_scatter(path: Path | str, points: list[dict]) -> Path:
    """Mask mean against similarity, one panel per method (paper Fig. 5), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(p["method"] for p in points))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 4), dpi=_DPI, squeeze=False)
    for ax, meth in zip(axes[0], methods, strict=True):
        pts = [p for p in points if p["method"] == meth]
        s = np.array([p["similarity"] for p in pts], dtype=float)
        m = np.array([p["mask_mean"] for p in pts], dtype=float)
        ax.scatter(s, m, s=6, alpha=0.5)
        r = np.corrcoef(s, m)[0, 1] if len(s) > 2 and s.std() > 0 and m.std() > 0 else float("nan")
        ax.set_title(f"{meth} (Pearson r = {r:.2f})", fontsize=10)
        ax.set_xlabel("similarity s (prompt, clip)")
        ax.set_ylabel("mask mean")
        ax.set_ylim(-0.02, 1.02)
    fig.tight_layout()
    with atomic_path(path, suffix=".part.png") as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png")
    plt.close(fig)
    return Path(path)


def render_ssim(path: Path | str, summary: list[dict], mode: str) -> Path:
    """SSIM to the intact model's explanation against the randomisation step, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=_DPI)
    methods = list(dict.fromkeys(r["method"] for r in summary))
    ticks: list[str] = []
    for meth in methods:
        rs = sorted((r for r in summary if r["method"] == meth), key=lambda r: int(r["step"]))
        x = [int(r["step"]) for r in rs]
        ax.plot(x, [float(r["mean"]) for r in rs], marker="o", label=meth)
        ax.fill_between(x, [float(r["ci_low"]) for r in rs], [float(r["ci_high"]) for r in rs], alpha=0.2)
        ticks = [r["block"] for r in rs]
    ax.set_xticks(range(len(ticks)))
    ax.set_xticklabels(ticks, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel(f"randomised block ({mode}, from the output side)")
    ax.set_ylabel("SSIM to the intact model's map")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".part.png") as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png")
    plt.close(fig)
    return Path(path)
