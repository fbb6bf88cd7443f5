"""The small model's out-of-domain flag (``models/small/domain.py``): the world's own scenes are
inside, real recordings are outside, and the statistics belong to exactly the shipped weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import lmaczs_cli
from lmaczs_cli.audio import load_audio
from lmaczs_cli.models.small import domain as small_domain
from lmaczs_cli.models.small.model import bundled_weights

SCENE = Path(lmaczs_cli.__file__).parent / "assets" / "examples" / "scene.wav"


@pytest.fixture(scope="module")
def model():
    return lmaczs_cli.load_model("small", device="cpu")


def _inside(m, waves: torch.Tensor) -> torch.Tensor:
    """What a job sees: encode, then ask about the clip with what the encode gave."""
    with torch.no_grad():
        mag = m.spectrogram(waves)[0]
        enc = m.encode(mag)
    return m.domain_check(enc.embedding.float(), enc, mag)


def test_held_out_synthetic_scenes_are_inside(model) -> None:
    from dataclasses import replace

    from lmaczs_cli.data.synthetic import SceneConfig, SyntheticDataset
    from lmaczs_cli.jobs.groundtruth import EVAL_SEED, SCENE_CONDITIONS

    for cond in ("default", "low-snr"):  # 30 scenes each; expected ~1 flagged, 2 and 0 measured
        ds = SyntheticDataset(30, EVAL_SEED, "test", replace(SceneConfig(), **SCENE_CONDITIONS[cond]))
        waves = torch.stack([model.fit_window(ds[i].wave.float()).wave for i in range(len(ds))])
        assert int(_inside(model, waves).sum()) >= 27, cond
    scene = model.fit_window(load_audio(SCENE, 16000).wave).wave
    assert bool(_inside(model, scene[None])[0])  # the bundled demo scene


def test_real_recordings_are_outside(model, esc50_mini: Path) -> None:
    """esc50-mini's 50 real clips: at least 45 flagged (the embedding-only check flagged 34)."""
    clips = sorted((esc50_mini / "audio").glob("*.wav"))
    waves = torch.stack([model.fit_window(load_audio(p, 16000).wave).wave for p in clips])
    outside = ~_inside(model, waves)
    assert len(clips) == 50 and int(outside.sum()) >= 45


def test_the_side_statistics_decide_and_the_embedding_alone_still_answers(model) -> None:
    from lmaczs_cli.data.synthetic import SyntheticDataset

    ds = SyntheticDataset(6, 77, "test")
    waves = torch.stack([model.fit_window(ds[i].wave.float()).wave for i in range(len(ds))])
    with torch.no_grad():
        mag = model.spectrogram(waves)[0]
        enc = model.encode(mag)
    side = small_domain.side_features(model.input_transform(mag), enc.hidden)
    assert side.shape == (6, 608) and torch.isfinite(side).all()
    check = small_domain.load(model, bundled_weights())
    full = model.domain_check(enc.embedding, enc, mag)
    assert full.tolist() == check(enc.embedding, side).tolist()
    # per clip: a subset of the batch gets the same answers
    sub = model.domain_check(enc.embedding[[4, 1]], type(enc)(enc.embedding[[4, 1]],
                                                              [h[[4, 1]] for h in enc.hidden]), mag[[4, 1]])
    assert sub.tolist() == full[[4, 1]].tolist()
    # the embedding alone: the weaker embedding-only test, still an answer per clip
    flags = model.domain_check(torch.nn.functional.normalize(torch.randn(3, enc.embedding.shape[1]), dim=-1))
    assert flags.dtype == torch.bool and flags.shape == (3,)


def test_statistics_for_other_weights_are_refused(model, tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    shutil.copy(bundled_weights(), weights)
    with np.load(small_domain.domain_file(bundled_weights())) as z:
        stats = {k: z[k] for k in z.files}
    assert str(stats["digest"]) == small_domain.weights_digest(model)
    np.savez(small_domain.domain_file(weights), **stats)
    assert isinstance(small_domain.load(model, weights), small_domain.DomainCheck)
    np.savez(small_domain.domain_file(weights), **{**stats, "digest": np.array("0" * 16)})
    assert small_domain.load(model, weights) is None  # stale: retrained without --write
    old = {k: v for k, v in stats.items() if k != "format"}
    np.savez(small_domain.domain_file(weights), **old)
    assert small_domain.load(model, weights) is None  # an older layout of the file
    rand = lmaczs_cli.load_model("small", "random", device="cpu")
    with torch.no_grad():
        emb = rand.encode(rand.spectrogram(torch.randn(1, 80000) * 0.1)[0]).embedding
    assert rand.domain_check(emb) is None and "_domain_memory" not in rand.__dict__


def test_packed_precision_round_trips() -> None:
    a = np.random.default_rng(0).standard_normal((7, 7))
    a = a @ a.T
    assert np.allclose(small_domain._unpack(small_domain._pack(a)), a)


def test_side_features_are_torch_mean_and_std() -> None:
    """The fast per-channel statistics equal torch's own (Bessel-corrected over the maps, plain over time)."""
    g = torch.Generator().manual_seed(0)
    hidden = [5 * torch.rand(3, 16, 32, 126, generator=g) + 2, torch.randn(3, 128, 8, 31, generator=g)]
    feats = torch.randn(3, 64, 501, generator=g)
    ref = torch.cat([hidden[0].mean((2, 3)), hidden[0].std((2, 3)), hidden[1].mean((2, 3)),
                     hidden[1].std((2, 3)), feats.mean(-1), feats.std(-1, correction=0)], 1)
    got = small_domain.side_features(feats, hidden)
    assert got.shape == ref.shape == (3, 2 * (16 + 128) + 2 * 64)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_the_domain_check_reads_the_features_the_encode_hands_on(model) -> None:
    """The log-mel the encode computed is reused, not computed again: the same verdicts either way."""
    from lmaczs_cli.models.base import Encoded

    wave = torch.randn(3, model.window_samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mag = model.spectrogram(0.1 * wave)[0]
        enc = model.encode(mag)
        assert torch.equal(enc.features, model.input_transform(mag))
        kept = model.domain_check(enc.embedding, enc, mag)
        again = model.domain_check(enc.embedding, Encoded(enc.embedding, enc.hidden), mag)
    assert torch.equal(kept, again)
