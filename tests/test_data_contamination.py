"""Out-of-domain contamination (docs/method.md §6) against hand-computed values; condition parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lmaczs_cli.data.contamination import (
    Condition,
    add_white_noise,
    match_length,
    mix_with_clip,
    mix_with_speech,
    noise_generator,
    parse_condition,
    peak_normalise,
    pick_file,
    pick_partner,
    unit_norm,
)
from lmaczs_cli.errors import UsageError
from tests.fixtures_data import write_clip


def test_mix_by_hand() -> None:
    s = torch.tensor([3.0, 4.0])  # ||s|| = 5 -> [0.6, 0.8]
    n = torch.tensor([2.0, 0.0])  # -> [1, 0]
    # 0.8 * [0.6, 0.8] + 0.2 * [1, 0] = [0.68, 0.64]; peak 0.68
    out = mix_with_clip(s, n)
    assert torch.allclose(out, torch.tensor([1.0, 0.64 / 0.68]))
    assert torch.allclose(mix_with_speech(s, n), out)
    # weight 0.5: [0.8, 0.4] -> [1, 0.5]
    assert torch.allclose(mix_with_clip(s, n, weight=0.5), torch.tensor([1.0, 0.5]))


def test_mix_tiles_or_crops_the_contaminant() -> None:
    s = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    n = torch.tensor([1.0, -1.0])  # tiled to [1, -1, 1, -1, 1], norm sqrt(5)
    r5 = 5**0.5
    expected = 0.8 * s + 0.2 * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0]) / r5
    assert torch.allclose(mix_with_clip(s, n), expected / expected.abs().max())
    long = torch.arange(12.0)
    assert torch.equal(match_length(long, 5), torch.arange(5.0))
    assert torch.equal(match_length(torch.tensor([1.0, 2.0]), 5), torch.tensor([1.0, 2.0, 1.0, 2.0, 1.0]))
    assert torch.equal(match_length(torch.zeros(0), 3), torch.zeros(3))
    assert match_length(torch.ones(2, 3), 7).shape == (2, 7)


def test_zero_energy_inputs_give_no_nan() -> None:
    z = torch.zeros(8)
    n = torch.tensor([0.0, 2.0, 0, 0, 0, 0, 0, 0])
    assert torch.equal(mix_with_clip(z, n), torch.tensor([0.0, 1.0, 0, 0, 0, 0, 0, 0]))
    assert torch.equal(mix_with_clip(n, z), torch.tensor([0.0, 1.0, 0, 0, 0, 0, 0, 0]))
    assert torch.equal(mix_with_clip(z, z), z)
    assert torch.equal(mix_with_clip(z, torch.zeros(0)), z)
    noisy = add_white_noise(z, torch.Generator().manual_seed(0))
    assert torch.isfinite(noisy).all() and noisy.abs().max() == pytest.approx(1.0)
    assert torch.equal(unit_norm(z), z) and torch.equal(peak_normalise(z), z)


def test_white_noise_formula_and_seeding() -> None:
    s = torch.sin(torch.arange(1000) * 0.05)
    out = add_white_noise(s, torch.Generator().manual_seed(123))
    w = torch.randn(1000, generator=torch.Generator().manual_seed(123)).numpy().astype(np.float64)
    x = s.numpy().astype(np.float64)
    ref = x / np.linalg.norm(x) + 0.5 * w / np.linalg.norm(w)
    ref /= np.abs(ref).max()
    assert np.allclose(out.numpy(), ref, atol=1e-6)
    assert out.abs().max().item() == pytest.approx(1.0)
    assert torch.equal(out, add_white_noise(s, 123))  # int seed == generator with that seed
    assert not torch.equal(out, add_white_noise(s, 124))
    louder = add_white_noise(s, 123, level=2.0)
    assert (louder - s / s.abs().max()).abs().mean() > (out - s / s.abs().max()).abs().mean()


def test_batched_rows_are_independent() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 400, generator=g)
    n = torch.randn(3, 250, generator=g)
    out = mix_with_clip(s, n)
    assert out.shape == (3, 400)
    for i in range(3):
        assert torch.allclose(out[i], mix_with_clip(s[i], n[i]), atol=1e-6)
    assert torch.allclose(out.abs().amax(dim=-1), torch.ones(3))
    # one contaminant for the whole batch broadcasts
    assert torch.allclose(mix_with_clip(s, n[0])[2], mix_with_clip(s[2], n[0]), atol=1e-6)
    noisy = add_white_noise(s, 5)
    assert noisy.shape == (3, 400) and torch.allclose(noisy.abs().amax(dim=-1), torch.ones(3))


def test_mix_keeps_dtype_and_rejects_bad_weight() -> None:
    s = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert mix_with_clip(s, torch.tensor([1.0, 0.0])).dtype == torch.float64
    with pytest.raises(ValueError, match="weight"):
        mix_with_clip(s, s, weight=1.5)


def test_seeded_choices() -> None:
    labels = ["dog", "dog", "rain", "rain", "cat"]
    picks = [pick_partner(i, labels, seed=0) for i in range(5)]
    assert picks == [pick_partner(i, labels, seed=0) for i in range(5)]
    assert all(labels[j] != labels[i] and j != i for i, j in enumerate(picks))
    assert {pick_partner(0, labels, seed=s) for s in range(30)} == {2, 3, 4}
    assert pick_partner(0, ["a", "a"], 0) == 1  # no other label: any other clip
    with pytest.raises(ValueError):
        pick_partner(0, ["a"], 0)
    assert {pick_file(i, 4, seed=1) for i in range(40)} == {0, 1, 2, 3}
    a = torch.randn(4, generator=noise_generator(3, seed=9))
    assert torch.equal(a, torch.randn(4, generator=noise_generator(3, seed=9)))
    assert not torch.equal(a, torch.randn(4, generator=noise_generator(4, seed=9)))


def test_parse_condition(tmp_path: Path) -> None:
    assert parse_condition("clean") == Condition("clean") and parse_condition("clean").is_clean
    assert parse_condition(" ESC50-Mix ").kind == "esc50-mix"
    assert parse_condition("white_noise").kind == "white-noise"
    lj = tmp_path / "LJSpeech-1.1"
    write_clip(lj / "wavs" / "LJ001-0001.wav", 22050, 0.2)
    write_clip(lj / "wavs" / "LJ001-0002.wav", 22050, 0.2)
    cond = parse_condition(f"speech:{lj}")
    assert cond.kind == "speech" and cond.speech_dir == lj and str(cond) == f"speech:{lj}"
    assert [p.name for p in cond.speech_files()] == ["LJ001-0001.wav", "LJ001-0002.wav"]
    errors = {
        "pink-noise": "unknown condition, expected clean, esc50-mix, white-noise or speech:DIR",
        "": "unknown condition",
        "speech": "speech needs a folder",
        "speech:": "speech needs a folder",
        f"speech:{tmp_path / 'nope'}": "not found",
        f"speech:{lj / 'wavs' / 'LJ001-0001.wav'}": "is not a folder",
        "clean:x": "clean takes no argument",
    }
    for text, expected in errors.items():
        with pytest.raises(UsageError) as e:
            parse_condition(text)
        assert expected in str(e.value) and "\n" not in str(e.value), (text, str(e.value))
    (tmp_path / "silent").mkdir()
    with pytest.raises(UsageError, match="no audio files"):
        parse_condition(f"speech:{tmp_path / 'silent'}").speech_files()


def test_condition_apply() -> None:
    s = torch.tensor([3.0, 4.0])
    other = torch.tensor([2.0, 0.0])
    assert parse_condition("clean").apply(s) is s
    assert torch.allclose(parse_condition("esc50-mix").apply(s, other=other), mix_with_clip(s, other))
    assert torch.equal(parse_condition("white-noise").apply(s, generator=4), add_white_noise(s, 4))
    with pytest.raises(ValueError, match="needs the clip"):
        parse_condition("esc50-mix").apply(s)
