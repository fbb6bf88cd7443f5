"""The explanation map as a PNG, drawn directly (colour-mapped arrays and PIL), in milliseconds.

Same content and layout as the matplotlib figure of :func:`lmaczs_cli.render.map_figure`:
input spectrogram (dB), mask, masked spectrogram (dB) side by side with a shared
frequency axis in kHz, a time axis in seconds, a colour bar per panel and the title;
a red banner across the top when the map explains a model with random weights; with an
activity curve (:mod:`lmaczs_cli.events`), a timeline strip under each panel (the clip's loudness
under the spectrogram, the explanation's activity and its segments under the other two).
1500 x 450 pixels, 256 colours; long clips are averaged down to the panel's pixel columns.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from lmaczs_cli.outputs import atomic_path

#: explanation map size in pixels (width, height)
MAP_SIZE = (1500, 450)
_TOP, _BOTTOM, _LEFT, _GAP, _BAR = 62, 46, 62, 72, 12
_TEXT, _GREY, _WHITE, _RED = (20, 20, 20), (90, 90, 90), (255, 255, 255), (200, 30, 30)
#: height of the timeline strip (pixels) and the gap above it
_STRIP, _STRIP_GAP = 40, 4
_SPAN, _CURVE = (255, 200, 120), (30, 90, 200)


@functools.lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    """The 256-entry RGB table of a matplotlib colour map."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _font(size: int, bold: bool = False):
    from matplotlib import get_data_path
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / name), size)
    except OSError:  # a matplotlib without its fonts: PIL's own
        return ImageFont.load_default(size)


def _db(mag: np.ndarray) -> np.ndarray:
    p = 20.0 * np.log10(np.maximum(mag, 1e-8))
    return np.maximum(p, p.max() - 80.0)


def _columns(x: np.ndarray, width: int) -> np.ndarray:
    """Average groups of time frames down to at most ``width`` columns (long clips)."""
    t = x.shape[1]
    if t <= width:
        return x
    k = math.ceil(t / width)
    pad = (-t) % k
    if pad:
        x = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
    return x.reshape(x.shape[0], -1, k).mean(2)


def _panel(values: np.ndarray, lo: float, hi: float, cmap: str, size: tuple[int, int]):
    """A colour-mapped image of ``values`` [F, T] (low frequencies at the bottom) at ``size``."""
    from PIL import Image

    # resample the values, then colour-map the panel's pixels (cheaper than resizing RGB)
    flipped = Image.fromarray(np.ascontiguousarray(values[::-1], dtype=np.float32), "F")
    scaled = np.asarray(flipped.resize(size, Image.BILINEAR))
    idx = np.clip((scaled - lo) * (255.0 / max(hi - lo, 1e-12)), 0, 255).astype(np.uint8)
    return Image.fromarray(_lut(cmap)[idx], "RGB")


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _ticks(span: float, target: int) -> list[float]:
    step = _nice_step(span, target)
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


def printable(text: str, limit: int = 80) -> str:
    """``text`` as one drawable line: control and format characters (CR, tabs, bidi overrides,
    zero-width marks) shown escaped, e.g. ``\\r``, and cut to ``limit`` characters with an ellipsis."""
    import unicodedata

    out = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                  else ascii(ch)[1:-1] for ch in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def render_map_png(path: Path | str, magnitude: np.ndarray, mask: np.ndarray, sample_rate: int,
                   hop_length: int, title: str, banner: str | None = None,
                   duration_s: float | None = None, *, activity: np.ndarray | None = None,
                   segments=()) -> Path:
    """Write the three-panel map (atomically) and return its path; ``magnitude``, ``mask``: [F, T]
    (``duration_s``: the time axis length when the columns are not STFT frames); ``activity``
    [frames over the clip] and ``segments`` (with ``onset``, ``offset``): the timeline strips."""
    from PIL import Image, ImageDraw

    w, h = MAP_SIZE
    top = _TOP + (26 if banner else 0)
    pw = (w - _LEFT - 2 * _GAP - _GAP + 12) // 3
    strip = 0 if activity is None else _STRIP + _STRIP_GAP
    ph = h - top - _BOTTOM - strip
    duration = magnitude.shape[1] * hop_length / sample_rate if duration_s is None else duration_s
    spec = _columns(_db(magnitude), pw)
    masked = _columns(_db(magnitude * mask), pw)
    m = _columns(mask, pw)
    lo, hi = float(spec.min()), float(spec.max())
    img = Image.new("RGB", (w, h), _WHITE)
    draw = ImageDraw.Draw(img)
    title, banner = printable(title, 150), banner and printable(banner, 150)
    if banner:
        draw.rectangle([0, 0, w, 24], fill=_RED)
        draw.text((w // 2, 12), banner, fill=_WHITE, font=_font(15, True), anchor="mm")
    draw.text((w // 2, top - 44), title, fill=_TEXT, font=_font(15), anchor="mm")
    panels = [("input spectrogram (dB)", spec, lo, hi, "magma"), ("mask", m, 0.0, 1.0, "viridis"),
              ("masked spectrogram (dB)", masked, lo, hi, "magma")]
    for i, (name, values, vlo, vhi, cmap) in enumerate(panels):
        x0 = _LEFT + i * (pw + _GAP)
        img.paste(_panel(values, vlo, vhi, cmap, (pw, ph)), (x0, top))
        draw.rectangle([x0 - 1, top - 1, x0 + pw, top + ph], outline=_GREY)
        draw.text((x0 + pw // 2, top - 14), name, fill=_TEXT, font=_font(13), anchor="mm")
        if activity is not None:
            y = top + ph + _STRIP_GAP
            if i == 0:
                loud = magnitude.sum(0)
                _strip(draw, x0, y, pw, loud / max(float(loud.max()), 1e-12), (), duration, "loudness")
            else:
                _strip(draw, x0, y, pw, np.asarray(activity, dtype=np.float64), segments, duration,
                       "activity")
        _time_axis(draw, x0, top + ph + strip, pw, duration)
        _colour_bar(img, draw, x0 + pw + 8, top, ph, vlo, vhi, cmap)
    _freq_axis(img, draw, _LEFT, top, ph, sample_rate / 2000.0)
    with atomic_path(path, suffix=".part.png") as tmp:
        # 256 colours (fast octree; mean error 1.6/255): a third of the bytes to deflate
        img.quantize(256, Image.Quantize.FASTOCTREE).save(tmp, format="PNG", compress_level=1)
    return Path(path)


def _strip(draw, x0: int, y: int, width: int, values: np.ndarray, spans, duration: float,
           label: str) -> None:
    """A timeline strip: ``spans`` as shaded boxes and ``values`` (in [0, 1], over the whole time
    axis; the max over each pixel column) as a curve."""
    h = _STRIP
    for sg in spans:
        a = x0 + round(float(sg.onset) / max(duration, 1e-9) * (width - 1))
        b = x0 + round(float(sg.offset) / max(duration, 1e-9) * (width - 1))
        draw.rectangle([a, y, max(a, b), y + h - 1], fill=_SPAN)
    v = np.clip(np.nan_to_num(values), 0.0, 1.0)
    if v.size:
        cols = np.minimum(np.arange(v.size) * width // v.size, width - 1)
        peak = np.zeros(width)
        np.maximum.at(peak, cols, v)
        filled = np.zeros(width, dtype=bool)
        filled[cols] = True
        xs = np.flatnonzero(filled)
        pts = [(x0 + int(x), y + h - 2 - round(float(peak[x]) * (h - 4))) for x in xs]
        draw.line(pts if len(pts) > 1 else pts * 2, fill=_CURVE, width=1)
    draw.rectangle([x0 - 1, y - 1, x0 + width, y + h], outline=_GREY)
    draw.text((x0 + 3, y + 1), label, fill=_GREY, font=_font(10), anchor="lt")


def _time_axis(draw, x0: int, y: int, width: int, duration: float) -> None:
    for t in _ticks(duration, 6):
        x = x0 + round(t / max(duration, 1e-9) * (width - 1))
        draw.line([x, y, x, y + 4], fill=_GREY)
        draw.text((x, y + 6), _fmt(round(t, 3)), fill=_TEXT, font=_font(11), anchor="mt")
    draw.text((x0 + width // 2, y + 24), "time (s)", fill=_TEXT, font=_font(12), anchor="mt")


def _freq_axis(img, draw, x: int, top: int, height: int, khz: float) -> None:
    from PIL import Image, ImageDraw

    for f in _ticks(khz, 8):
        y = top + height - 1 - round(f / max(khz, 1e-9) * (height - 1))
        draw.line([x - 5, y, x - 1, y], fill=_GREY)
        draw.text((x - 7, y), _fmt(f), fill=_TEXT, font=_font(11), anchor="rm")
    label = Image.new("RGB", (140, 18), _WHITE)
    ImageDraw.Draw(label).text((70, 9), "frequency (kHz)", fill=_TEXT, font=_font(12), anchor="mm")
    img.paste(label.rotate(90, expand=True), (6, top + height // 2 - 70))


def _colour_bar(img, draw, x: int, top: int, height: int, lo: float, hi: float, cmap: str) -> None:
    from PIL import Image

    ramp = _lut(cmap)[np.linspace(255, 0, height).astype(np.uint8)][:, None, :].repeat(_BAR, 1)
    img.paste(Image.fromarray(np.ascontiguousarray(ramp), "RGB"), (x, top))
    draw.rectangle([x - 1, top - 1, x + _BAR, top + height], outline=_GREY)
    span = max(hi - lo, 1e-12)
    step = _nice_step(span, 5)
    for k in range(math.ceil(lo / step), math.floor(hi / step) + 1):
        v = k * step
        y = top + height - 1 - round((v - lo) / span * (height - 1))
        draw.line([x + _BAR, y, x + _BAR + 3, y], fill=_GREY)
        draw.text((x + _BAR + 5, y), _fmt(round(v, 6)), fill=_TEXT, font=_font(10), anchor="lm")
