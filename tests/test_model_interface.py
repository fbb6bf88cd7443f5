"""The ZeroShotModel contract, checked the same way on every model: LAION-CLAP and Hugging Face
ClapModel (real HTSAT-tiny architectures, stub tokenizers), Microsoft CLAP 2022 (CNN14 + BERT) and
2023 (HTSAT + GPT-2, stub tokenizer), all with seeded random weights, and the bundled
small model."""

from __future__ import annotations

import warnings

import pytest
import torch

from lmaczs_cli.models.base import ZeroShotModel
from lmaczs_cli.models.registry import create_model
from tests.helpers_laion import make_stub_tokenizer
from tests.helpers_msclap import make_gpt2_stub_tokenizer


@pytest.fixture(scope="module",
                params=["small", "laion-htsat-tiny", "hf-htsat-tiny", "ms-clap-2022", "ms-clap-2023"])
def model(request, tmp_path_factory: pytest.TempPathFactory) -> ZeroShotModel:
    if request.param == "small":
        return create_model("small")
    if request.param in ("ms-clap-2022", "hf-htsat-tiny"):  # 2022's BERT vocabulary ships; hf: a stub
        tok = None
    elif request.param == "ms-clap-2023":
        tok = make_gpt2_stub_tokenizer(tmp_path_factory.mktemp("gpt2"))
    else:
        tok = make_stub_tokenizer(tmp_path_factory.mktemp("tok"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_model(request.param, ckpt="random", tokenizer_dir=tok, seed=0)


def tone_and_noise(model: ZeroShotModel) -> torch.Tensor:
    """Two full windows for the contract checks: a 600 Hz tone and seeded noise."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(model.window_samples) / model.sample_rate
    tone = 0.3 * torch.sin(2 * torch.pi * 600 * t)
    noise = 0.05 * torch.randn(model.window_samples, generator=g)
    return torch.stack([model.fit_window(tone).wave, model.fit_window(noise).wave])


@pytest.fixture(scope="module")
def waves(model: ZeroShotModel) -> torch.Tensor:
    return tone_and_noise(model)


def test_spectrogram_grid_and_exact_inverse(model: ZeroShotModel, waves: torch.Tensor) -> None:
    mag, ph = model.spectrogram(waves)
    assert mag.shape == (2, model.n_freqs, model.n_frames) == ph.shape
    back = model.inverse(mag, ph, waves.shape[-1])
    assert torch.allclose(back, waves, atol=1e-4)


def test_embedding_is_normalised_and_hidden_maps_are_4d(model: ZeroShotModel, waves: torch.Tensor) -> None:
    with torch.no_grad():
        enc = model.encode(model.spectrogram(waves)[0])
    assert torch.allclose(enc.embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert enc.hidden and all(h.dim() == 4 and h.shape[0] == 2 for h in enc.hidden)
    assert not torch.allclose(enc.embedding[0], enc.embedding[1])


def test_all_ones_mask_keeps_the_similarity(model: ZeroShotModel, waves: torch.Tensor) -> None:
    mag = model.spectrogram(waves)[0]
    text = model.embed_text(["a tone", "noise"])
    with torch.no_grad():
        s = model.similarity(mag, text)
        s_masked = model.similarity(torch.ones_like(mag) * mag, text)
        s_half = model.similarity(0.5 * mag, text)
    assert torch.allclose(s, s_masked, atol=1e-6)
    assert not torch.allclose(s, s_half, atol=1e-6)  # the input does matter


def test_encode_is_differentiable_in_the_magnitude(model: ZeroShotModel, waves: torch.Tensor) -> None:
    mag = model.spectrogram(waves[:1])[0].requires_grad_(True)
    text = model.embed_text(["a tone"])
    (model.encode(mag).embedding @ text.T).sum().backward()
    assert mag.grad is not None and torch.isfinite(mag.grad).all() and mag.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())  # the model stays frozen


def test_text_embeddings_are_normalised_and_cached(model: ZeroShotModel) -> None:
    a = model.embed_text(["a dog barking", "rain"])
    assert torch.allclose(a.norm(dim=-1), torch.ones(2), atol=1e-5)
    b = model.embed_text(["rain", "a dog barking"])
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0])
    assert "rain" in model.__dict__["_text_cache"]


def test_declared_structure(model: ZeroShotModel) -> None:
    fb = model.mel_filterbank()
    assert fb.shape == (model.n_mels, model.n_freqs) and float(fb.min()) >= 0
    blocks = model.randomisable_blocks()
    mods = {id(m) for m in model.modules()}
    assert len(blocks) >= 2 and all(id(b) in mods for _, b in blocks)
    layer, _ = model.gradcam_target()
    assert id(layer) in mods
    assert model.logit_scale > 1
    spec = model.spec_id()
    assert spec["model"] == model.name and spec["n_frames"] == model.n_frames


def test_short_clip_follows_the_padding_rule(model: ZeroShotModel) -> None:
    short = 0.1 * torch.ones(model.window_samples // 3)
    w = model.fit_window(short)
    assert w.wave.shape == (model.window_samples,) and w.valid == short.shape[0]


def test_unknown_model_is_a_usage_error() -> None:
    from lmaczs_cli.errors import UsageError

    with pytest.raises(UsageError, match="laion-htsat-tiny"):
        create_model("nope")
