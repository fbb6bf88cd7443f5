"""LAION feature fusion: a long clip seen as a fusion CLAP sees it (shrunk whole clip + 3 crops).

Parity, given the same crop starts, with the upstream code paths on the same random
weights: ``laion_clap``'s ``CLAP_Module.get_audio_embedding_from_data`` with
``enable_fusion=True`` (``get_mel`` + the ``data_truncating="fusion"`` branch of
``get_audio_features``, compiled from training/data.py without its import-time
downloads) and transformers' ``ClapFeatureExtractor(truncation="fusion")`` +
``ClapModel.get_audio_features(is_longer=True)``. Upstream draws the crops with
``np.random.choice``; the tests make that draw return lmaczs' deterministic starts.
Negative controls (other crops, no fusion) must fail the tolerance. Offline.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lmaczs_cli.models.fusion import RULES, crop_starts, fused_mel, htk_filterbank, thirds
from lmaczs_cli.models.hf.clap import HfClap
from lmaczs_cli.models.laion.fusion import LaionClapFused, build_htsat_tiny_fusion
from lmaczs_cli.models.laion.reference import _compile_from, package_module
from lmaczs_cli.models.laion.upstream import load_upstream
from lmaczs_cli.models.registry import create_model
from tests.helpers_hf import save_random_clap
from tests.helpers_laion import make_signals, make_stub_tokenizer

TOL = 1e-6  # cosine distance
CHUNK = 1001  # frames of one 10 s window at 48 kHz, hop 480


def _cos_dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(1.0 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).max())


@contextmanager
def upstream_draws(starts: tuple[int, int, int]) -> Iterator[None]:
    """Make upstream's ``np.random.choice(ranges[i])`` (front, middle, back) return ``starts``."""
    queue = list(starts)
    real = np.random.choice

    def pick(options, *args, **kwargs):
        if args or kwargs or not queue:
            return real(options, *args, **kwargs)
        s = queue.pop(0)
        assert s in list(options), f"{s} is not a start upstream can draw from {options[0]}..{options[-1]}"
        return s

    np.random.choice = pick
    try:
        yield
    finally:
        np.random.choice = real
    assert not queue, "upstream drew fewer crops than expected"


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    return make_signals()


# -- the crop rule ------------------------------------------------------------------------


@pytest.mark.parametrize("total", [CHUNK + 1, CHUNK + 2, CHUNK + 3, CHUNK + 50, 2501, 5001])
@pytest.mark.parametrize("rule", RULES)
def test_crop_starts_are_ones_upstream_can_draw(total: int, rule: str) -> None:
    starts = crop_starts(total, CHUNK, rule)
    for s, allowed in zip(starts, thirds(total, CHUNK), strict=True):
        assert s in allowed
    if rule == "ends-centre" and total - CHUNK + 1 >= 3:  # (an empty back third falls back to [0])
        assert starts[0] == 0 and starts[2] == total - CHUNK  # the clip's start and end are seen
    assert crop_starts(total, CHUNK, rule) == starts  # deterministic


def test_crop_rule_refuses_clips_of_one_window_and_unknown_rules() -> None:
    with pytest.raises(ValueError, match="do not exceed"):
        crop_starts(CHUNK, CHUNK)
    with pytest.raises(ValueError, match="unknown fusion crop rule"):
        crop_starts(2 * CHUNK, CHUNK, "random")
    with pytest.raises(ValueError, match="outside"):
        fused_mel(torch.zeros(1, 1500, 64), CHUNK, (0, 0, 600), antialias=False)


def test_htk_filterbank_is_torchaudios() -> None:
    torchaudio = pytest.importorskip("torchaudio")
    want = torchaudio.functional.melscale_fbanks(513, 50, 14000, 64, 48000, norm=None, mel_scale="htk")
    assert torch.allclose(htk_filterbank(513, 64, 48000, 50, 14000), want, atol=1e-7)


def test_shrink_matches_torchvision_resize() -> None:
    tv = pytest.importorskip("torchvision")
    mel = torch.randn(2500, 64)
    want = tv.transforms.Resize(size=[CHUNK, 64])(mel[None])[0]
    got = fused_mel(mel[None], CHUNK, (0, 700, 1499), antialias=True)[0, 0]
    assert torch.allclose(got, want, atol=1e-5)


# -- LAION .pt fusion vs laion_clap ----------------------------------------------------------


@pytest.fixture(scope="module")
def laion(tmp_path_factory: pytest.TempPathFactory) -> LaionClapFused:
    tok = make_stub_tokenizer(tmp_path_factory.mktemp("tok"))
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return build_htsat_tiny_fusion(ckpt="random", tokenizer_dir=tok, seed=0)


@pytest.fixture(scope="module")
def pkg(laion: LaionClapFused):
    """``CLAP_Module(enable_fusion=True)`` on the same weights, with the package's own ``get_mel``."""
    import torch.nn.functional as F
    import torchaudio
    import torchvision

    data = _compile_from(load_upstream().package_dir / "training" / "data.py",
                         {"get_mel", "get_audio_features", "int16_to_float32", "float32_to_int16"},
                         {"np": np, "torch": torch, "F": F, "suppress": suppress,
                          "torchaudio": torchaudio, "torchvision": torchvision})
    hook = _compile_from(load_upstream().package_dir / "hook.py", {"CLAP_Module"},
                         {"torch": torch, **{k: data[k] for k in
                                             ("get_audio_features", "int16_to_float32", "float32_to_int16")}})
    mod = package_module(laion, SimpleNamespace(CLAP_Module=hook["CLAP_Module"]), laion.tokenizer)
    mod.enable_fusion = True
    return mod


def _package(pkg, clip: np.ndarray, starts: tuple[int, int, int] | None) -> torch.Tensor:
    state = np.random.get_state()
    try:
        np.random.seed(0)
        if starts is None:
            return torch.as_tensor(pkg.get_audio_embedding_from_data([clip]))[0]
        with upstream_draws(starts):
            return torch.as_tensor(pkg.get_audio_embedding_from_data([clip]))[0]
    finally:
        np.random.set_state(state)


def _whole_magnitude(model, clip: np.ndarray, quantize: bool) -> torch.Tensor:
    wave = torch.from_numpy(clip)
    if quantize:
        wave = model._quantized(wave)
    return model.spectrogram(wave[None])[0]


@pytest.mark.slow
def test_laion_fusion_long_clip_matches_package(laion: LaionClapFused, pkg, signals) -> None:
    clip = signals["25s"]
    mag = _whole_magnitude(laion, clip, quantize=True)
    starts = crop_starts(mag.shape[-1], CHUNK, laion.crop_rule)
    assert laion.fusion_record(len(clip))["fusion_crop_starts"] == list(starts)
    with torch.no_grad():
        ours = laion.encode_fused(mag).embedding[0]
        other = laion.encode_fused(mag, crop_starts(mag.shape[-1], CHUNK, "thirds-start")).embedding[0]
        first_window = laion.encode(mag[..., :CHUNK]).embedding[0]
    ref = _package(pkg, clip, starts)
    dist = _cos_dist(ours, ref)
    print(f"laion fusion parity 25s {starts}: 1 - cos = {dist:.3e}")
    assert dist <= TOL
    # negative controls: other crops, and no fusion (the first window alone)
    assert _cos_dist(other, ref) > 100 * TOL
    assert _cos_dist(first_window, ref) > 100 * TOL
    ref_other = _package(pkg, clip, crop_starts(mag.shape[-1], CHUNK, "thirds-start"))
    assert _cos_dist(other, ref_other) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["3s", "10s"])
def test_laion_fusion_short_clip_matches_package(laion: LaionClapFused, pkg, signals, clip: str) -> None:
    """Up to one window the package does not fuse (``longer=False``): the global channel only."""
    x = signals[clip]
    w = laion.fit_window(torch.from_numpy(x)).wave
    with torch.no_grad():
        ours = laion.encode(laion.spectrogram(w[None])[0]).embedding[0]
        whole = laion.encode_fused(_whole_magnitude(laion, x, quantize=True)).embedding[0]
    ref = _package(pkg, x, None)
    dist = _cos_dist(ours, ref)
    print(f"laion fusion parity {clip}: 1 - cos = {dist:.3e}")
    assert dist <= TOL
    if clip == "10s":
        assert _cos_dist(whole, ref) <= TOL  # encode_fused of one window is encode
    assert laion.fusion_record(len(x))["fusion"] is (len(x) > 480000)


@pytest.mark.slow
def test_laion_fused_embedding_is_differentiable_over_the_whole_clip(laion: LaionClapFused, signals) -> None:
    mag = _whole_magnitude(laion, signals["25s"], quantize=True)
    mask = torch.ones_like(mag, requires_grad=True)
    laion.encode_fused(mag * mask).embedding.sum().backward()
    g = mask.grad.abs().sum(dim=1)[0]  # per frame
    t = mag.shape[-1]
    for lo, hi in ((0, t // 3), (t // 3, 2 * t // 3), (2 * t // 3, t)):
        assert float(g[lo:hi].sum()) > 0  # every third of the clip reaches the embedding
    assert float(g[-100:].sum()) > 0  # the clip's end too


def test_laion_fusion_spec_id_records_the_rule(laion: LaionClapFused) -> None:
    assert laion.spec_id()["fusion"] == "ends-centre"
    assert laion.chunk_frames == CHUNK


# -- HF fused checkpoint vs transformers -------------------------------------------------------


@pytest.fixture(scope="module")
def hf_fused(tmp_path_factory: pytest.TempPathFactory) -> HfClap:
    folder = save_random_clap(tmp_path_factory.mktemp("fused"), fusion=True, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_model(f"hf:{folder}")


def _transformers(model: HfClap, clip: np.ndarray, starts: tuple[int, int, int]) -> tuple[torch.Tensor, dict]:
    from transformers import ClapFeatureExtractor

    fe = ClapFeatureExtractor.from_pretrained(model.source, local_files_only=True)
    with upstream_draws(starts):
        inputs = fe(clip, sampling_rate=model.sample_rate, return_tensors="pt")
    with torch.no_grad():
        out = model.clap.get_audio_features(**inputs)
    return (out if isinstance(out, torch.Tensor) else out.pooler_output)[0], inputs


@pytest.mark.slow
def test_hf_fusion_long_clip_matches_transformers(hf_fused: HfClap, signals) -> None:
    clip = signals["25s"]
    mag = _whole_magnitude(hf_fused, clip, quantize=False)
    starts = crop_starts(mag.shape[-1], CHUNK, hf_fused.crop_rule)
    ref, inputs = _transformers(hf_fused, clip, starts)
    assert bool(inputs["is_longer"].all()) and inputs["input_features"].shape[1:] == (4, CHUNK, 64)
    with torch.no_grad():
        fused = hf_fused.fused_input(mag)
        ours = hf_fused.encode_fused(mag).embedding[0]
        other = hf_fused.encode_fused(mag, crop_starts(mag.shape[-1], CHUNK, "thirds-start")).embedding[0]
        window = hf_fused.encode(mag[..., :CHUNK]).embedding[0]
    feat_err = float((fused[0].double() - inputs["input_features"][0].double()).abs().max())
    dist = _cos_dist(ours, ref)
    print(f"hf fusion parity 25s {starts}: 1 - cos = {dist:.3e}, max |dB diff| = {feat_err:.2e}")
    assert dist <= TOL
    assert _cos_dist(other, ref) > 100 * TOL and _cos_dist(window, ref) > 100 * TOL
    assert hf_fused.fusion_record(len(clip))["fusion_crop_starts"] == list(starts)


@pytest.mark.slow
def test_hf_fused_embedding_is_differentiable_over_the_whole_clip(hf_fused: HfClap, signals) -> None:
    mag = _whole_magnitude(hf_fused, signals["25s"], quantize=False)
    mask = torch.ones_like(mag, requires_grad=True)
    hf_fused.encode_fused(mag * mask).embedding.sum().backward()
    g = mask.grad.abs().sum(dim=1)[0]
    assert float(g[: mag.shape[-1] // 3].sum()) > 0 and float(g[-100:].sum()) > 0


def test_hf_encode_fused_refuses_unfused_models(tmp_path: Path) -> None:
    from lmaczs_cli.errors import UsageError

    folder = save_random_clap(tmp_path, fusion=False, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(f"hf:{folder}")
    with pytest.raises(UsageError, match="not a fusion checkpoint"):
        model.encode_fused(torch.ones(1, 513, 2000))


@pytest.mark.slow
def test_a_fusion_pt_file_loads_into_the_fusion_model_only(laion: LaionClapFused, tmp_path: Path) -> None:
    from lmaczs_cli.errors import UsageError
    from lmaczs_cli.models.laion.model import build_htsat_tiny

    path = tmp_path / "630k-audioset-fusion-best.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in laion.clap.state_dict().items()}}, path)
    tok = laion._tokenizer_dir
    loaded = build_htsat_tiny_fusion(ckpt=str(path), tokenizer_dir=tok)
    assert loaded.checkpoint == path.name and not loaded.random_weights
    for a, b in zip(loaded.clap.state_dict().values(), laion.clap.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(UsageError, match="fusion checkpoints are not supported.*laion-htsat-tiny-fusion"):
        build_htsat_tiny(ckpt=str(path), tokenizer_dir=tok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        named = create_model("laion-htsat-tiny-fusion", ckpt=str(path), tokenizer_dir=tok)
    assert isinstance(named, LaionClapFused) and named.fuses_long_clips
