"""PNG figures: the explanation map (spectrogram, mask, masked spectrogram) and plots."""

from __future__ import annotations

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
) -> Path:
    """Write the three-panel explanation PNG (atomically) and return its path.

    ``magnitude`` and ``mask`` are [F, T] on the same linear-frequency grid.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, t = magnitude.shape
    extent = (0.0, t * hop_length / sample_rate, 0.0, sample_rate / 2000.0)
    spec_db = _db(magnitude)
    masked_db = _db(magnitude * mask)
    vmin, vmax = spec_db.min(), spec_db.max()
    fig, axes = plt.subplots(
        1, 3, figsize=(MAP_SIZE[0] / _DPI, MAP_SIZE[1] / _DPI), dpi=_DPI, sharey=True
    )
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
    fig.tight_layout()
    with atomic_path(path, suffix=".part.png") as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png")
    plt.close(fig)
    return Path(path)
