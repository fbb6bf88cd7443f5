"""The fast paths of explain's files: the palette map (cached layout, hand-written PNG) and WAVs
encoded in memory draw and write what the slower paths did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from lmaczs_cli.events import Segment
from lmaczs_cli.mapimage import MAP_SIZE, _lut, render_map_png


def _inputs(t: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mag = np.abs(rng.standard_normal((129, t))).astype(np.float32)
    mag[20:30, 100:200] = 50.0
    mask = np.zeros_like(mag)
    mask[20:30, 100:200] = 1.0
    return mag, mask


def test_the_map_is_a_valid_palette_png_with_the_colour_maps(tmp_path: Path) -> None:
    mag, mask = _inputs()
    path = render_map_png(tmp_path / "m.png", mag, mask, 8000, 64, "title")
    with Image.open(path) as im:
        im.load()  # decodes every row: the hand-written chunks and CRCs are valid
        assert im.format == "PNG" and im.mode == "P" and im.size == MAP_SIZE
        rgb = np.asarray(im.convert("RGB")).astype(int)
    # the mask panel (middle) where the mask is one: viridis' top colour; elsewhere its bottom one
    ys, xs = np.nonzero(np.abs(rgb - _lut("viridis")[255].astype(int)).max(2) <= 3)
    assert len(ys) > 1000 and 500 < xs.mean() < 1000
    assert (np.abs(rgb - _lut("viridis")[0].astype(int)).max(2) <= 3).sum() > 50_000
    # the spectrogram's loud event in magma's brightest colours, left panel
    bright = np.abs(rgb - _lut("magma")[255].astype(int)).max(2) <= 4
    assert bright[:, :480].sum() > 1000


def test_cached_layouts_do_not_leak_between_maps(tmp_path: Path) -> None:
    mag, mask = _inputs()
    act = np.zeros(mag.shape[1])
    act[100:200] = 1.0
    spans = [Segment(1.0, 2.0, 1.5, 1.0)]
    a = render_map_png(tmp_path / "a.png", mag, mask, 8000, 64, "first", banner="RANDOM WEIGHTS",
                       activity=act, segments=spans)
    b = render_map_png(tmp_path / "b.png", mag, np.ones_like(mask), 8000, 64, "second", activity=act)
    ra, rb = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (a, b))
    red = lambda img: ((img[5:20, 100:1400, 0] > 150) & (img[5:20, 100:1400, 1] < 80)).mean()  # noqa: E731
    assert red(ra) > 0.5 and red(rb) == 0  # the banner is drawn per map, not cached into the next
    span = lambda img: (np.abs(img[380:420] - np.array([255, 200, 120])).max(2) <= 2).sum()  # noqa: E731
    assert span(ra) > 500 and span(rb) == 0  # a's span, under its strips only
    # b's mask is all ones: its whole mask panel is viridis' top colour (a's panel did not stay)
    top = np.abs(rb[100:300, 560:940] - _lut("viridis")[255].astype(int)).max(2) <= 3
    assert top.mean() > 0.99


def test_wavs_are_the_bytes_libsndfile_writes(tmp_path: Path) -> None:
    from lmaczs_cli.audio import write_wav

    x = (0.5 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)
    for sub in ("PCM_16", "FLOAT", "PCM_24"):
        sf.write(tmp_path / f"ref-{sub}.wav", x, 16000, subtype=sub, format="WAV")
        ours = write_wav(tmp_path / f"ours-{sub}.wav", x, 16000, sub)
        assert ours.read_bytes() == (tmp_path / f"ref-{sub}.wav").read_bytes()


def test_time_columns_are_the_padded_mean_bit_for_bit() -> None:
    """Frames averaged into pixel columns: the last group padded with the last frame, as before."""
    from lmaczs_cli.mapimage import _columns

    x = np.random.default_rng(1).standard_normal((5, 5000)).astype(np.float32)
    for t in (30, 411, 412, 501, 823, 1001, 3000, 3289, 4999):
        k = -(-t // 411)
        padded = np.concatenate([x[:, :t], np.repeat(x[:, t - 1 : t], (-t) % k, axis=1)], axis=1)
        if k == 1:
            want = x[:, :t]
        elif k <= 8:  # strided sums, in frame order
            want = padded[:, 0::k].copy()
            for j in range(1, k):
                want += padded[:, j::k]
            want /= k
        else:
            want = padded.reshape(5, -1, k).mean(2)
        assert np.array_equal(_columns(x[:, :t], 411), want), (t, k)


def test_both_activity_strips_are_the_same_pixels(tmp_path: Path) -> None:
    from lmaczs_cli.mapimage import _STRIP, _Layout

    mag, mask = _inputs()
    act = np.linspace(0.0, 1.0, mag.shape[1])
    path = render_map_png(tmp_path / "m.png", mag, mask, 8000, 64, "t", activity=act,
                          segments=[Segment(0.5, 1.5, 1.0, 0.9)])
    img, lay = np.asarray(Image.open(path)), _Layout(False, True)
    y, (_, x1, x2) = lay.strip_y, lay.x0
    under_mask = img[y : y + _STRIP, x1 : x1 + lay.pw]
    assert np.array_equal(under_mask, img[y : y + _STRIP, x2 : x2 + lay.pw])
    assert len(np.unique(under_mask)) > 3  # curve, span, label: drawn, not a blank strip
