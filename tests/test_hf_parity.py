"""Hugging Face CLAP: our differentiable front end reproduces transformers' own embeddings.

The reference is transformers' path - ``ClapFeatureExtractor`` (numpy) with the
hub checkpoints' ``preprocessor_config.json`` + ``ClapModel.get_audio_features`` /
``get_text_features`` - on the same seeded random weights (HTSAT-tiny and
HTSAT-base architectures of laion/clap-htsat-unfused and laion/larger_clap_general).
Nothing here touches the network.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from lmaczs_cli.models.hf.clap import HfClap
from lmaczs_cli.models.hf.configs import NAMED
from lmaczs_cli.models.registry import create_model
from tests.helpers_hf import PUBLISHED_CONFIGS, PUBLISHED_EXTRACTOR, save_random_clap
from tests.helpers_laion import make_signals

TOL = 1e-6  # cosine distance
N_WIN = 480000
PROMPTS = ["this is a sound of dog barking", "rain", "a cat", "this is a sound of " + "rain " * 90]


def _cos_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)


def _random(name: str) -> HfClap:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_model(name, ckpt="random", seed=0)


@pytest.fixture(scope="module")
def extractor(tmp_path_factory: pytest.TempPathFactory):
    """transformers' own extractor, loaded from the published preprocessor_config.json."""
    from transformers import ClapFeatureExtractor

    d = tmp_path_factory.mktemp("pre")
    (d / "preprocessor_config.json").write_text(json.dumps(PUBLISHED_EXTRACTOR))
    return ClapFeatureExtractor.from_pretrained(str(d), local_files_only=True)


@pytest.fixture(scope="module", params=["hf-htsat-tiny", "hf-htsat-base"])
def model(request) -> HfClap:
    return _random(request.param)


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    return make_signals()


def reference_audio(model: HfClap, extractor, clip: np.ndarray, seed: int) -> tuple[torch.Tensor, int]:
    """transformers' embedding of ``clip``, and the crop offset its ``rand_trunc`` drew."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        inputs = extractor(clip, sampling_rate=48000, return_tensors="pt")
    finally:
        np.random.set_state(state)
    with torch.no_grad():
        out = model.clap.get_audio_features(**inputs)
    emb = out if isinstance(out, torch.Tensor) else out.pooler_output
    over = len(clip) - N_WIN
    offset = int(np.random.RandomState(seed).randint(0, over + 1)) if over > 0 else 0
    return emb[0], offset


def ours(model: HfClap, clip: np.ndarray, offset: int = 0) -> torch.Tensor:
    wave = model.fit_window(torch.from_numpy(clip), offset=offset).wave
    with torch.no_grad():
        return model.encode(model.spectrogram(wave[None])[0]).embedding[0]


# -- the core claim -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["10s", "3s", "25s"])
def test_audio_embedding_matches_transformers(model, extractor, signals, clip: str) -> None:
    ref, offset = reference_audio(model, extractor, signals[clip], seed=7)
    if clip == "25s":
        assert offset > 0  # transformers really cropped somewhere other than the start
    dist = float(_cos_dist(ours(model, signals[clip], offset), ref))
    print(f"parity {model.name} {clip}: 1 - cos = {dist:.3e}")
    assert dist <= TOL


@pytest.mark.slow
def test_clips_are_far_apart_and_wrong_front_ends_fail(model, extractor, signals) -> None:
    """TOL is a real constraint: different clips, a wrong filterbank, zero padding instead of
    repeat padding, or another crop all land orders of magnitude further away."""
    ref10, _ = reference_audio(model, extractor, signals["10s"], 0)
    ref3, _ = reference_audio(model, extractor, signals["3s"], 0)
    ref25, offset = reference_audio(model, extractor, signals["25s"], 3)
    assert float(_cos_dist(ref10, ref3)) > 1e4 * TOL
    # the HTK filterbank (what a "fusion" extractor or the class defaults use) instead of Slaney
    slaney = model.mel_fb.clone()
    try:
        model.mel_fb.copy_(torch.as_tensor(extractor.mel_filters, dtype=torch.float32))
        wrong_fb = float(_cos_dist(ours(model, signals["10s"]), ref10))
    finally:
        model.mel_fb.copy_(slaney)
    x3 = torch.from_numpy(signals["3s"])
    zero_pad = torch.nn.functional.pad(x3, (0, N_WIN - len(x3)))
    with torch.no_grad():
        wrong_pad = float(_cos_dist(model.encode(model.spectrogram(zero_pad[None])[0]).embedding[0], ref3))
    other = 0 if offset > (len(signals["25s"]) - N_WIN) // 2 else len(signals["25s"]) - N_WIN
    wrong_crop = float(_cos_dist(ours(model, signals["25s"], other), ref25))
    print(f"controls {model.name}: filterbank {wrong_fb:.2e}, zero pad {wrong_pad:.2e}, "
          f"crop {wrong_crop:.2e}")
    assert min(wrong_fb, wrong_pad, wrong_crop) > 100 * TOL


@pytest.mark.slow
def test_text_embedding_matches_transformers(model) -> None:
    tok = model.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.clap.get_text_features(**tok)
    ref = out if isinstance(out, torch.Tensor) else out.pooler_output
    emb = model.embed_text(PROMPTS)
    dist = _cos_dist(emb, ref)
    print(f"text parity {model.name}: max 1 - cos = {float(dist.max()):.3e}")
    assert float(dist.max()) <= TOL
    assert float(_cos_dist(emb[0], emb[1])) > 100 * TOL


# -- front-end pieces -----------------------------------------------------------------


@pytest.mark.slow
def test_log_mel_matches_the_extractor(model, extractor, signals) -> None:
    """dB features from our |STFT| vs the extractor's numpy ones: equal up to float32
    round-off, which only shows in near-silent bins."""
    x = signals["3s"]
    theirs = torch.from_numpy(extractor(x, sampling_rate=48000)["input_features"][0][0]).T  # 64, T
    wave = model.fit_window(torch.from_numpy(x)).wave[None]
    with torch.no_grad():
        mine = model.input_transform(model.spectrogram(wave)[0])[0]
    diff = (mine - theirs).abs()
    print(f"log-mel |ours - transformers| dB: median {float(diff.median()):.1e} max {float(diff.max()):.1e}")
    assert mine.shape == theirs.shape == (64, 1001)
    assert float(diff.median()) < 1e-4 and float(diff.quantile(0.999)) < 0.05
    assert torch.allclose(model.mel_filterbank(), torch.from_numpy(extractor.mel_filters_slaney).float().T)


def test_fit_window_follows_the_extractor_padding(model, signals) -> None:
    x = torch.from_numpy(signals["3s"])
    n = len(x)
    w = model.fit_window(x)
    assert w.valid == n and w.wave.shape == (N_WIN,)
    for k in range(N_WIN // n):
        assert torch.equal(w.wave[k * n:(k + 1) * n], x)  # no int16 step
    assert not w.wave[(N_WIN // n) * n:].any()
    long = torch.from_numpy(signals["25s"])
    w = model.fit_window(long, offset=1000)
    assert w.valid == N_WIN and torch.equal(w.wave, long[1000:1000 + N_WIN])
    with pytest.raises(ValueError, match="offset"):
        model.fit_window(long, offset=len(long))


def test_named_configs_equal_the_published_ones(model) -> None:
    """Our written-out configs build the same ClapConfig as the hub's sparse config.json."""
    from transformers import ClapConfig

    published = ClapConfig(**PUBLISHED_CONFIGS[model.name]).to_dict()
    ours_cfg = model.clap.config.to_dict()
    for part in ("audio_config", "text_config"):
        for key in NAMED[model.name].config_dict()[part]:
            assert ours_cfg[part][key] == published[part][key], (part, key)
    assert ours_cfg["projection_dim"] == published["projection_dim"]
    assert ours_cfg["logit_scale_init_value"] == published["logit_scale_init_value"]
    extractor = {k: v for k, v in PUBLISHED_EXTRACTOR.items() if k in NAMED[model.name].extractor}
    assert extractor == NAMED[model.name].extractor


def test_model_facts(model) -> None:
    enc = model.clap.audio_model.audio_encoder
    assert model.logit_scale == pytest.approx(float(model.clap.logit_scale_a.exp()))
    with torch.no_grad():
        model.clap.logit_scale_t.add_(1.0)  # the text-side scale is not the one for audio logits
    try:
        assert model.logit_scale == pytest.approx(14.285714, rel=1e-6)
    finally:
        with torch.no_grad():
            model.clap.logit_scale_t.sub_(1.0)
    mods = dict(model.named_modules())
    stages = model.randomisable_blocks()
    assert [n for n, _ in stages][1:5] == [f"audio_model.audio_encoder.layers.{i}" for i in range(4)]
    assert all(mods[f"clap.{n}"] is m for n, m in stages)
    blocks = model.randomisable_blocks("block")
    assert len(blocks) == 1 + sum(enc.config.depths) + 3 + 2
    layer, reshape = model.gradcam_target()
    assert layer is enc.norm
    c = enc.num_features
    assert reshape(torch.randn(2, 64, c)).shape == (2, c, 2, 32)


# -- fusion checkpoints ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> HfClap:
    folder = save_random_clap(tmp_path_factory.mktemp("fused"), fusion=True, seed=1)
    return create_model(f"hf:{folder}")


@pytest.mark.slow
def test_fusion_checkpoint_matches_transformers_per_window(fused, signals) -> None:
    """Clips up to one window: the extractor stacks 4 copies and (single clip) sets is_longer;
    a longer clip is explained per window, each exactly as the extractor sees that window."""
    from transformers import ClapFeatureExtractor

    fe = ClapFeatureExtractor.from_pretrained(fused.source, local_files_only=True)
    assert fe.truncation == "fusion" and fused.truncation == "fusion"
    assert torch.allclose(fused.mel_filterbank(), torch.from_numpy(fe.mel_filters).float().T)
    window = signals["25s"][96000:96000 + N_WIN]
    cases = {"3s": (signals["3s"], 0), "10s": (signals["10s"], 0), "25s@2s": (signals["25s"], 96000)}
    refs = {}
    for label, (clip, offset) in cases.items():
        inputs = fe(clip if label != "25s@2s" else window, sampling_rate=48000, return_tensors="pt")
        assert inputs["input_features"].shape[1] == 4 and bool(inputs["is_longer"].all())
        with torch.no_grad():
            out = fused.clap.get_audio_features(**inputs)
        refs[label] = (out if isinstance(out, torch.Tensor) else out.pooler_output)[0]
        dist = float(_cos_dist(ours(fused, clip, offset), refs[label]))
        print(f"fusion parity {label}: 1 - cos = {dist:.3e}")
        assert dist <= TOL
    assert float(_cos_dist(refs["3s"], refs["10s"])) > 100 * TOL
