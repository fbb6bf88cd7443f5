"""The explanation map as a PNG, drawn directly (palette indices with numpy, text with PIL), in
a few milliseconds.

Same content and layout as the matplotlib figure of :func:`lmaczs_cli.render.map_figure`:
input spectrogram (dB), mask, masked spectrogram (dB) side by side with a shared
frequency axis in kHz, a time axis in seconds, a colour bar per panel and the title;
a red banner across the top when the map explains a model with random weights; with an
activity curve (:mod:`lmaczs_cli.events`), a timeline strip under each panel (the clip's loudness
under the spectrogram, the explanation's activity and its segments under the other two).
1500 x 450 pixels, one fixed 256-colour palette (magma in 128 levels, viridis in 92, greys and
the few chrome colours); long clips are averaged down to the panel's pixel columns.

How it stays cheap (a map is drawn for every explanation): the image is composed as palette
indices, never as RGB. Everything that is the same from map to map (axes, panel names, the
colour bars, the timeline frames; the glyphs of tick labels) is drawn once and cached; per map
only the panels, the title, the dB colour bars' ticks and the timeline curves are drawn, and the
PNG is written directly (:func:`_png`: no quantisation, no per-row filter search).
"""

from __future__ import annotations

import functools
import math
import struct
import threading
import zlib
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
#: palette: colour map levels, then greys (all text and lines), the banner's red to white, the
#: timeline's span colour to grey (its label over a span), the curve
_N_MAGMA, _N_VIRIDIS, _N_RED, _N_SPAN = 128, 92, 8, 6
_GREYS = sorted({20, 90, 255, *np.linspace(20, 255, 18).round().astype(int).tolist()})
_MAGMA0 = 0
_VIRIDIS0 = _MAGMA0 + _N_MAGMA
_GREY0 = _VIRIDIS0 + _N_VIRIDIS
_RED0 = _GREY0 + len(_GREYS)
_SPAN0 = _RED0 + _N_RED
_CURVE_I = _SPAN0 + _N_SPAN
_BASES = {"magma": (_MAGMA0, _N_MAGMA), "viridis": (_VIRIDIS0, _N_VIRIDIS)}
_TEXT_LOCK = threading.Lock()  # FreeType faces are shared by the writer threads


@functools.lru_cache(maxsize=4)
def _lut(name: str) -> np.ndarray:
    """The 256-entry RGB table of a matplotlib colour map."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _levels(cmap: str) -> np.ndarray:
    """Palette index of each of the colour map's 256 levels (levels share an entry in bins)."""
    base, n = _BASES[cmap]
    return (base + np.arange(256) * n // 256).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _palette() -> bytes:
    """The map's 256 RGB entries (PLTE chunk): each colour map bin is the mean of its levels."""
    pal = np.zeros((256, 3), dtype=np.float64)
    for cmap, (base, n) in _BASES.items():
        bins = np.arange(256) * n // 256
        lut = _lut(cmap).astype(np.float64)
        for k in range(n):
            pal[base + k] = lut[bins == k].mean(0)
    pal[_GREY0 : _GREY0 + len(_GREYS)] = np.array(_GREYS)[:, None]
    for k in range(_N_RED):  # white text anti-aliased over the red banner
        a = k / (_N_RED - 1)
        pal[_RED0 + k] = np.array(_RED) * (1 - a) + np.array(_WHITE) * a
    for k in range(_N_SPAN):  # the grey label anti-aliased over a span
        a = k / (_N_SPAN - 1)
        pal[_SPAN0 + k] = np.array(_SPAN) * (1 - a) + np.array(_GREY) * a
    pal[_CURVE_I] = _CURVE
    return pal.round().astype(np.uint8).tobytes()


@functools.lru_cache(maxsize=1)
def _grey_index() -> np.ndarray:
    """Palette index of the nearest grey for each grey level 0..255 (the chrome is drawn in "L")."""
    g = np.array(_GREYS)
    return (_GREY0 + np.abs(np.arange(256)[:, None] - g[None, :]).argmin(1)).astype(np.uint8)


_WHITE_I = int(_GREY0 + len(_GREYS) - 1)
_GREY_I = int(_GREY0 + _GREYS.index(90))


@functools.lru_cache(maxsize=8)
def _font(size: int, bold: bool = False):
    from matplotlib import get_data_path
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / name), size)
    except OSError:  # a matplotlib without its fonts: PIL's own
        return ImageFont.load_default(size)


def _render_text(text: str, size: int, bold: bool, anchor: str) -> tuple[np.ndarray, int, int]:
    """``text``'s coverage [h, w] (0..255) and its offset from the anchor point."""
    from PIL import Image, ImageDraw

    font = _font(size, bold)
    with _TEXT_LOCK:
        left, top, right, bottom = (int(v) for v in ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(
            (0, 0), text, font=font, anchor=anchor))
        im = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
        ImageDraw.Draw(im).text((-left, -top), text, fill=255, font=font, anchor=anchor)
    return np.asarray(im), left, top


_glyphs = functools.lru_cache(maxsize=1024)(_render_text)  # tick labels, names: drawn once


def _glyph_at(shape: tuple[int, ...], xy: tuple[int, int], text: str, size: int, bold: bool, anchor: str,
              cache: bool) -> tuple[np.ndarray, slice, slice] | None:
    """The glyph coverage of ``text`` at ``xy``, cut to an image of ``shape``, and the rows and
    columns it covers there (None when it falls outside)."""
    cover, dx, dy = (_glyphs if cache else _render_text)(text, size, bold, anchor)
    x, y = xy[0] + dx, xy[1] + dy
    h, w = cover.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, shape[1]), min(y + h, shape[0])
    if x0 >= x1 or y0 >= y1:
        return None
    return cover[y0 - y : y1 - y, x0 - x : x1 - x], slice(y0, y1), slice(x0, x1)


def _put_text(canvas: np.ndarray, xy: tuple[int, int], text: str, size: int, *, fill: int = _TEXT[0],
              bold: bool = False, anchor: str = "la", cache: bool = True) -> None:
    """Draw ``text`` in grey level ``fill`` onto the grey-level ``canvas`` (white where it goes)."""
    at = _glyph_at(canvas.shape, xy, text, size, bold, anchor, cache)
    if at is None:
        return
    c, rows, cols = at
    ink = (255 - (c.astype(np.uint16) * (255 - fill) + 127) // 255).astype(np.uint8)
    np.minimum(canvas[rows, cols], ink, out=canvas[rows, cols])


def _paint(img: np.ndarray, xy: tuple[int, int], text: str, size: int, *, fill: int = _TEXT[0],
           bold: bool = False, anchor: str = "la", cache: bool = True) -> None:
    """Draw ``text`` in grey level ``fill`` straight onto the palette image ``img`` (white where it goes)."""
    at = _glyph_at(img.shape, xy, text, size, bold, anchor, cache)
    if at is None:
        return
    c, rows, cols = at
    on = c > 0
    grey = 255 - (c[on].astype(np.uint16) * (255 - fill) + 127) // 255
    img[rows, cols][on] = _grey_index()[grey]


def _db(mag: np.ndarray) -> np.ndarray:
    p = 20.0 * np.log10(np.maximum(mag, 1e-8))
    return np.maximum(p, p.max() - 80.0)


def _columns(x: np.ndarray, width: int) -> np.ndarray:
    """Average groups of time frames down to at most ``width`` columns (long clips)."""
    t = x.shape[1]
    if t <= width:
        return x
    k = math.ceil(t / width)
    if k <= 8:  # a few strided slices: much faster than a mean over a short last axis
        acc = x[:, 0::k].copy()
        for j in range(1, k):
            part = x[:, j::k]
            acc[:, : part.shape[1]] += part
            acc[:, part.shape[1] :] += x[:, -1:]  # the last group, padded with the last frame
        acc /= k
        return acc
    pad = (-t) % k
    if pad:
        x = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
    return x.reshape(x.shape[0], -1, k).mean(2)


def _panel(values: np.ndarray, lo: float, hi: float, cmap: str, size: tuple[int, int]) -> np.ndarray:
    """Palette indices [h, w] of ``values`` [F, T] (low frequencies at the bottom) at ``size``."""
    from PIL import Image

    pw, ph = size
    scale = 255.0 / max(hi - lo, 1e-12)
    flipped = np.array(values[::-1], dtype=np.float32)  # a copy: changed in place below
    if flipped.shape[0] <= ph and flipped.shape[1] <= pw:
        # enlarged both ways: each bin becomes a block of pixels (as matplotlib's "nearest"), so
        # colour-map the bins and enlarge the indices
        flipped -= lo
        flipped *= scale
        level = np.clip(flipped, 0, 255, out=flipped).astype(np.uint8)
        return np.asarray(Image.fromarray(np.take(_levels(cmap), level), "L").resize(size, Image.NEAREST))
    # shrunk (many frequency bins): resample the values, then colour-map the panel's pixels
    scaled = np.asarray(Image.fromarray(flipped, "F").resize(size, Image.BILINEAR))
    return np.take(_levels(cmap), np.clip((scaled - lo) * scale, 0, 255).astype(np.uint8))


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


class _Layout:
    """Where everything goes, for a map with or without a banner and timeline strips."""

    def __init__(self, banner: bool, strip: bool) -> None:
        w, h = MAP_SIZE
        self.top = _TOP + (26 if banner else 0)
        self.pw = (w - _LEFT - 2 * _GAP - _GAP + 12) // 3
        self.strip = _STRIP + _STRIP_GAP if strip else 0
        self.ph = h - self.top - _BOTTOM - self.strip
        self.x0 = [_LEFT + i * (self.pw + _GAP) for i in range(3)]
        self.bar_x = [x0 + self.pw + 8 for x0 in self.x0]
        self.strip_y = self.top + self.ph + _STRIP_GAP


@functools.lru_cache(maxsize=16)
def _background(banner: bool, strip: bool, duration: float, khz: float) -> tuple[np.ndarray, np.ndarray]:
    """What every map of this layout shares, as palette indices [h, w] (white panels, no dB ticks,
    no title or banner text), and the timeline strips' interiors as they look under a span."""
    lay = _Layout(banner, strip)
    w, h = MAP_SIZE
    top, pw, ph = lay.top, lay.pw, lay.ph
    canvas = np.full((h, w), 255, dtype=np.uint8)  # grey levels
    names = ("input spectrogram (dB)", "mask", "masked spectrogram (dB)")
    for i, (x0, bx) in enumerate(zip(lay.x0, lay.bar_x, strict=True)):
        _outline(canvas, x0 - 1, top - 1, x0 + pw, top + ph)
        _outline(canvas, bx - 1, top - 1, bx + _BAR, top + ph)
        _put_text(canvas, (x0 + pw // 2, top - 14), names[i], 13, anchor="mm")
        if strip:
            y = lay.strip_y
            _outline(canvas, x0 - 1, y - 1, x0 + pw, y + _STRIP)
            _put_text(canvas, (x0 + 3, y + 1), "loudness" if i == 0 else "activity", 10, fill=_GREY[0],
                      anchor="lt")
        _time_axis(canvas, x0, top + ph + lay.strip, pw, duration)
    _freq_axis(canvas, _LEFT, top, ph, khz)
    _bar_ticks(canvas, lay.bar_x[1], top, ph, 0.0, 1.0)
    under_span = None
    if strip:  # a strip's interior under a span: the span colour, the label blended over it
        y, x0 = lay.strip_y, lay.x0[1]
        alpha = (255.0 - canvas[y : y + _STRIP, x0 : x0 + pw]) / (255.0 - _GREY[0])
        under_span = (_SPAN0 + np.clip(np.round(alpha * (_N_SPAN - 1)), 0, _N_SPAN - 1)).astype(np.uint8)
        under_span.setflags(write=False)
    out = _grey_index()[canvas]
    for bx, cmap in zip(lay.bar_x, ("magma", "viridis", "magma"), strict=True):
        out[top : top + ph, bx : bx + _BAR] = _levels(cmap)[np.linspace(255, 0, ph).astype(np.uint8)][:, None]
    out.setflags(write=False)
    return out, under_span


def _outline(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int, level: int = _GREY[0]) -> None:
    """A one-pixel rectangle outline, corners included (PIL's ``rectangle(outline=...)``)."""
    canvas[y0, x0 : x1 + 1] = level
    canvas[y1, x0 : x1 + 1] = level
    canvas[y0 : y1 + 1, x0] = level
    canvas[y0 : y1 + 1, x1] = level


@functools.lru_cache(maxsize=8)
def _banner(text: str) -> np.ndarray:
    """The red banner (palette indices [25, w]) with ``text`` in white."""
    w = MAP_SIZE[0]
    cover = np.zeros((25, w), dtype=np.uint8)
    _put_coverage(cover, (w // 2, 12), text, 15, bold=True, anchor="mm")
    out = (_RED0 + (cover.astype(np.uint16) * (_N_RED - 1) + 127) // 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def _put_coverage(cover: np.ndarray, xy: tuple[int, int], text: str, size: int, *, bold: bool,
                  anchor: str) -> None:
    c, dx, dy = _render_text(text, size, bold, anchor)
    x, y = xy[0] + dx, xy[1] + dy
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + c.shape[1], cover.shape[1]), min(y + c.shape[0], cover.shape[0])
    if x0 < x1 and y0 < y1:
        np.maximum(cover[y0:y1, x0:x1], c[y0 - y : y1 - y, x0 - x : x1 - x], out=cover[y0:y1, x0:x1])


def render_map_png(path: Path | str, magnitude: np.ndarray, mask: np.ndarray, sample_rate: int,
                   hop_length: int, title: str, banner: str | None = None,
                   duration_s: float | None = None, *, activity: np.ndarray | None = None,
                   segments=()) -> Path:
    """Write the three-panel map (atomically) and return its path; ``magnitude``, ``mask``: [F, T]
    (``duration_s``: the time axis length when the columns are not STFT frames); ``activity``
    [frames over the clip] and ``segments`` (with ``onset``, ``offset``): the timeline strips."""
    magnitude = np.asarray(magnitude, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    w, h = MAP_SIZE
    title, banner = printable(title, 150), banner and printable(banner, 150)
    lay = _Layout(bool(banner), activity is not None)
    top, pw, ph = lay.top, lay.pw, lay.ph
    duration = magnitude.shape[1] * hop_length / sample_rate if duration_s is None else duration_s
    spec = _columns(_db(magnitude), pw)
    masked = _columns(_db(magnitude * mask), pw)
    m = _columns(mask, pw)
    lo, hi = float(spec.min()), float(spec.max())
    background, under_span = _background(bool(banner), activity is not None, float(duration),
                                         sample_rate / 2000.0)
    img = background.copy()
    _paint(img, (w // 2, top - 44), title, 15, anchor="mm", cache=False)  # what differs per map:
    for i, (values, vlo, vhi, cmap) in enumerate(  # the title, the panels, the dB ticks, the strips
            [(spec, lo, hi, "magma"), (m, 0.0, 1.0, "viridis"), (masked, lo, hi, "magma")]):
        x0 = lay.x0[i]
        img[top : top + ph, x0 : x0 + pw] = _panel(values, vlo, vhi, cmap, (pw, ph))
        if cmap == "magma":
            _bar_ticks(img, lay.bar_x[i], top, ph, lo, hi, put=_paint, line=_GREY_I)
    if activity is not None:
        _strips(img, lay, magnitude, np.asarray(activity, dtype=np.float64), segments, duration, under_span)
    if banner:
        img[:25] = _banner(banner)
    with atomic_path(path, suffix=".part.png") as tmp:
        tmp.write_bytes(_png(img, _palette()))
    return Path(path)


def _png(index: np.ndarray, palette: bytes) -> bytes:
    """A palette PNG of ``index`` [h, w] (uint8): every row "Up"-filtered (rows repeated by the
    enlarged panels become zeros) and deflated as runs (zlib's RLE strategy: a third of the time of
    level 1's string matching for a few more bytes; no per-row filter search)."""
    h, w = index.shape
    rows = np.empty((h, w + 1), dtype=np.uint8)
    rows[:, 0] = 2  # filter type Up: each byte minus the one above it (modulo 256)
    rows[0, 1:] = index[0]
    np.subtract(index[1:], index[:-1], out=rows[1:, 1:])
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    data = z.compress(rows.tobytes()) + z.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return b"".join([b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)),
                     chunk(b"PLTE", palette), chunk(b"IDAT", data), chunk(b"IEND", b"")])


def _strips(img: np.ndarray, lay: _Layout, magnitude: np.ndarray, activity: np.ndarray, segments,
            duration: float, under_span: np.ndarray) -> None:
    """The timeline strips: the clip's loudness under the spectrogram; the explanation's activity and
    segments under the mask, and the same strip (copied: the same pixels) under the masked spectrogram."""
    y, pw, (x0, x1, x2) = lay.strip_y, lay.pw, lay.x0
    loud = magnitude.sum(0, dtype=np.float64)
    _strip(img, x0, y, pw, loud / max(float(loud.max()), 1e-12), (), duration, None)
    _strip(img, x1, y, pw, activity, segments, duration, under_span)
    img[y : y + _STRIP, x2 : x2 + pw] = img[y : y + _STRIP, x1 : x1 + pw]


def _strip(img: np.ndarray, x0: int, y: int, width: int, values: np.ndarray, spans, duration: float,
           under_span: np.ndarray | None) -> None:
    """A timeline strip's interior: ``spans`` as shaded boxes and ``values`` (in [0, 1], over the
    whole time axis; the max over each pixel column) as a curve (frame and label: the background)."""
    from PIL import Image, ImageDraw

    h = _STRIP
    area = img[y : y + h, x0 : x0 + width]
    label = area != _WHITE_I  # the label, drawn over spans and curve
    for sg in spans:
        a = round(float(sg.onset) / max(duration, 1e-9) * (width - 1))
        b = round(float(sg.offset) / max(duration, 1e-9) * (width - 1))
        a, b = min(max(a, 0), width - 1), min(max(a, b), width - 1)
        area[:, a : b + 1] = under_span[:, a : b + 1]
    v = np.clip(np.nan_to_num(values), 0.0, 1.0)
    if v.size:
        cols = np.minimum(np.arange(v.size) * width // v.size, width - 1)
        starts = np.flatnonzero(np.diff(cols, prepend=-1))  # columns are non-decreasing
        xs = cols[starts]
        ys = h - 2 - np.round(np.maximum.reduceat(v, starts) * (h - 4)).astype(int)
        pts = list(zip(xs.tolist(), ys.tolist(), strict=True))
        line = Image.new("L", (width, h), 0)
        ImageDraw.Draw(line).line(pts if len(pts) > 1 else pts * 2, fill=255, width=1)
        curve = np.asarray(line) > 0
        area[curve & ~label] = _CURVE_I


def _time_axis(canvas: np.ndarray, x0: int, y: int, width: int, duration: float) -> None:
    for t in _ticks(duration, 6):
        x = x0 + round(t / max(duration, 1e-9) * (width - 1))
        canvas[y : y + 5, x] = _GREY[0]
        _put_text(canvas, (x, y + 6), _fmt(round(t, 3)), 11, anchor="mt")
    _put_text(canvas, (x0 + width // 2, y + 24), "time (s)", 12, anchor="mt")


def _freq_axis(canvas: np.ndarray, x: int, top: int, height: int, khz: float) -> None:
    for f in _ticks(khz, 8):
        y = top + height - 1 - round(f / max(khz, 1e-9) * (height - 1))
        canvas[y, x - 5 : x] = _GREY[0]
        _put_text(canvas, (x - 7, y), _fmt(f), 11, anchor="rm")
    ink = _freq_label()
    y0 = top + height // 2 - 70
    np.minimum(canvas[y0 : y0 + ink.shape[0], 6 : 6 + ink.shape[1]], ink,
               out=canvas[y0 : y0 + ink.shape[0], 6 : 6 + ink.shape[1]])


@functools.lru_cache(maxsize=1)
def _freq_label() -> np.ndarray:
    """"frequency (kHz)" turned upright (grey levels [140, 18], white around the text)."""
    label = np.full((18, 140), 255, dtype=np.uint8)
    _put_text(label, (70, 9), "frequency (kHz)", 12, anchor="mm")
    return np.ascontiguousarray(np.rot90(label))


def _bar_ticks(canvas: np.ndarray, x: int, top: int, height: int, lo: float, hi: float, *,
               put=_put_text, line: int = _GREY[0]) -> None:
    """A colour bar's ticks and values right of the bar at column ``x`` (on grey levels; or with
    ``put=_paint`` and ``line`` a palette index, on the palette image)."""
    span = max(hi - lo, 1e-12)
    step = _nice_step(span, 5)
    for k in range(math.ceil(lo / step), math.floor(hi / step) + 1):
        v = k * step
        y = top + height - 1 - round((v - lo) / span * (height - 1))
        canvas[y, x + _BAR : x + _BAR + 4] = line
        put(canvas, (x + _BAR + 5, y), _fmt(round(v, 6)), 10, anchor="lm")
