"""Window splitting and mask stitching for clips shorter and longer than the model window."""

from __future__ import annotations

import pytest
import torch

from lmaczs_cli.windows import stitch_masks, window_starts


def test_window_starts_cover_the_clip_with_half_overlap() -> None:
    n, w, hop = 100_000, 16_000, 160
    starts = window_starts(n, w, hop)
    assert starts[0] == 0 and all(s % hop == 0 for s in starts)
    assert all(b - a <= w // 2 for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] + w >= n  # the tail is covered
    covered = torch.zeros(n, dtype=torch.bool)
    for s in starts:
        covered[s : s + w] = True
    assert bool(covered.all())


def test_short_clip_is_one_window() -> None:
    assert window_starts(10, 100, 5) == [0]


def test_stitched_constant_masks_stay_constant() -> None:
    class W:
        def __init__(self, start: int) -> None:
            self.start = start

    n, w, hop = 50_000, 16_000, 160
    starts = window_starts(n, w, hop)
    tw = w // hop + 1
    masks = torch.full((len(starts), 4, tw), 0.7)
    out = stitch_masks(masks, [W(s) for s in starts], n, hop)
    assert out.shape == (4, n // hop + 1)
    assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)


def test_stitched_mask_is_continuous_across_joins() -> None:
    """Windows that disagree (0 vs 1) blend smoothly: no jump larger than a small step."""

    class W:
        def __init__(self, start: int) -> None:
            self.start = start

    n, w, hop = 48_000, 16_000, 160
    starts = window_starts(n, w, hop)
    tw = w // hop + 1
    masks = torch.stack([torch.full((1, tw), float(i % 2)) for i in range(len(starts))])
    out = stitch_masks(masks, [W(s) for s in starts], n, hop)[0]
    jumps = (out[1:] - out[:-1]).abs()
    assert float(jumps.max()) < 0.1


def test_fill_window_fills_and_crops_by_hand() -> None:
    from lmaczs_cli.errors import AudioError
    from lmaczs_cli.models.base import fill_window

    w = torch.tensor([1.0, 2.0, 3.0])
    cases = {
        "repeatpad": [1, 2, 3, 1, 2, 3, 0, 0],
        "repeat": [1, 2, 3, 1, 2, 3, 1, 2],
        "pad": [1, 2, 3, 0, 0, 0, 0, 0],
    }
    for padding, want in cases.items():
        got = fill_window(w, 8, padding=padding)
        assert got.wave.tolist() == want and got.valid == 3, padding
    long = torch.arange(10.0)
    got = fill_window(long, 4, offset=5, padding="repeatpad")
    assert got.wave.tolist() == [5, 6, 7, 8] and got.valid == 4
    assert fill_window(long, 10).wave.tolist() == long.tolist()
    with pytest.raises(ValueError, match="offset 7 outside"):
        fill_window(long, 4, offset=7)
    with pytest.raises(AudioError, match="empty audio"):
        fill_window(torch.zeros(0), 4)
    with pytest.raises(ValueError, match="mono clip"):
        fill_window(torch.zeros(2, 5), 4)
