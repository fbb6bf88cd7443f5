"""PE-Audio (transformers ``PeAudioModel``): our magnitude -> waveform -> encoder path reproduces
transformers' own embeddings, on seeded random weights of a small config with the real layout.

The reference is transformers' path: ``PeAudioFeatureExtractor`` (numpy: reflect pad to a
multiple of 1920, padding mask) + ``PeAudioModel.get_audio_embeds`` and
``PeAudioModel.forward``'s ``text_audio_embeds``. Nothing here touches the network.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.families import family_of
from lmaczs_cli.models.pe_audio.model import EXTRACTOR, PeAudio, griffin_lim_phase, preflight_missing
from lmaczs_cli.models.registry import create_model, describe_models
from lmaczs_cli.signal import istft
from tests.helpers_laion import make_signals
from tests.helpers_pe_audio import save_random_pe_audio, small_model

# the ZeroShotModel contract, run on PE-Audio with this module's ``model`` and ``waves``
from tests.test_model_interface import (  # noqa: F401
    test_all_ones_mask_keeps_the_similarity,
    test_declared_structure,
    test_embedding_is_normalised_and_hidden_maps_are_4d,
    test_encode_is_differentiable_in_the_magnitude,
    test_short_clip_follows_the_padding_rule,
    test_spectrogram_grid_and_exact_inverse,
    test_text_embeddings_are_normalised_and_cached,
    tone_and_noise,
)

TOL = 1e-6  # cosine distance
SR = 48000
PROMPTS = ["this is a sound of dog barking", "rain", "a cat", "this is a sound of " + "rain " * 90]


def _cos_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)


@pytest.fixture(scope="module")
def model() -> PeAudio:
    return small_model(10.0)


@pytest.fixture(scope="module")
def waves(model: PeAudio) -> torch.Tensor:
    return tone_and_noise(model)


@pytest.fixture(scope="module")
def extractor():
    from transformers import PeAudioFeatureExtractor

    return PeAudioFeatureExtractor(**EXTRACTOR)


@pytest.fixture(scope="module")
def signals() -> dict[str, np.ndarray]:
    return make_signals()


def _window(model: PeAudio, seconds: float) -> PeAudio:
    """The same weights seen through another window length."""
    return PeAudio(model.pe, _ext(), model.tokenizer, model.name, "random", window_seconds=seconds)


def _ext():
    from transformers import PeAudioFeatureExtractor

    return PeAudioFeatureExtractor(**EXTRACTOR)


def reference(model: PeAudio, extractor, wave: np.ndarray, **kw) -> torch.Tensor:
    """transformers' audio embedding of ``wave`` (extractor + get_audio_embeds)."""
    inputs = extractor(wave, sampling_rate=SR, return_tensors="pt", **kw)
    with torch.no_grad():
        return model.pe.get_audio_embeds(**inputs)[0]


def ours(model: PeAudio, clip: np.ndarray, offset: int = 0) -> torch.Tensor:
    wave = model.fit_window(torch.from_numpy(clip), offset=offset).wave
    with torch.no_grad():
        return model.encode(model.spectrogram(wave[None])[0]).embedding[0]


# -- the core claim -------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [1.0, 2.5, 10.0])
@pytest.mark.parametrize("fill", [0.4, 1.0, 2.2])
def test_audio_embedding_matches_transformers(model, extractor, signals, seconds: float, fill: float) -> None:
    """Windows of 1, 2.5 (not a multiple of the codec hop: the extractor reflect-pads) and 10 s;
    clips shorter (zero-padded), exactly one window, and longer (the first window, as the
    extractor's own ``truncation=True, max_length=N`` where N is a whole number of codec frames)."""
    m = _window(model, seconds)
    n = m.window_samples
    clip = signals["25s"][: int(fill * n)]
    if fill > 1 and n % m.hop == 0:
        ref = reference(m, extractor, clip, truncation=True, max_length=n, padding=False)
    elif fill > 1:  # the extractor reflect-pads before it truncates: it would cut mid-frame
        ref = reference(m, extractor, clip[:n])
    else:
        ref = reference(m, extractor, m.fit_window(torch.from_numpy(clip)).wave.numpy())
    dist = float(_cos_dist(ours(m, clip), ref))
    print(f"parity {seconds} s window, clip {fill:.1f} windows: 1 - cos = {dist:.3e}")
    assert dist <= TOL
    assert m.phase_estimates == 0


def test_wrong_front_ends_fail(model, extractor, signals) -> None:
    """TOL is a real constraint: another clip, a zero or Griffin-Lim phase, zero padding instead
    of the extractor's reflect padding, another crop all land orders of magnitude further."""
    m = _window(model, 2.5)
    n = m.window_samples
    x = signals["25s"][:n]
    ref = reference(m, extractor, x)
    other = float(_cos_dist(reference(m, extractor, signals["10s"][:n]), ref))
    mag, phase = m.spectrogram(torch.from_numpy(x)[None])
    with torch.no_grad():
        zero_phase = m.encode_wave(istft(mag, torch.zeros_like(phase), m.stft_config, n)).embedding[0]
        gl = m.encode_wave(istft(mag, griffin_lim_phase(mag, n), m.stft_config, n)).embedding[0]
        zpad = torch.nn.functional.pad(torch.from_numpy(x), (0, m.hop - n % m.hop))
        zero_pad = m.encode_wave(zpad[None]).embedding[0]
    crop = float(_cos_dist(ours(m, signals["25s"], offset=SR), ref))
    d = {"other clip": other, "zero phase": float(_cos_dist(zero_phase, ref)),
         "griffin-lim phase": float(_cos_dist(gl, ref)), "zero pad": float(_cos_dist(zero_pad, ref)),
         "crop at 1 s": crop}
    print("controls:", ", ".join(f"{k} {v:.2e}" for k, v in d.items()))
    assert min(d.values()) > 100 * TOL
    # transformers with a padding mask (a short clip padded in a batch) is another input again
    short = signals["3s"][: n // 2]
    masked = reference(m, extractor, short, padding="max_length", max_length=n)
    assert float(_cos_dist(ours(m, short), masked)) > 100 * TOL


def test_text_embedding_matches_transformers(model, extractor, signals) -> None:
    tok = model.tokenizer(PROMPTS, padding=True, return_tensors="pt")
    inputs = extractor(signals["3s"][:SR], sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        out = model.pe(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"], **inputs)
    emb = model.embed_text(PROMPTS)
    dist = _cos_dist(emb, out.text_audio_embeds)
    print(f"text parity: max 1 - cos = {float(dist.max()):.3e}")
    assert float(dist.max()) <= TOL
    assert float(_cos_dist(emb[0], emb[1])) > 100 * TOL
    # transformers' logits: unnormalised dot product x scale + bias; ours: cosine x scale
    audio = ours(_window(model, 1.0), signals["3s"][:SR])
    cos = (audio @ emb.T)
    assert torch.allclose(cos, torch.nn.functional.normalize(out.audio_embeds, dim=-1)[0]
                          @ torch.nn.functional.normalize(out.text_audio_embeds, dim=-1).T, atol=1e-5)


# -- masks and the phase memory -------------------------------------------------------


def test_masks_find_their_clip_phase(model, signals) -> None:
    """Masked rows, reordered and repeated, are resynthesised with their own clip's phase."""
    m = _window(model, 1.0)
    n = m.window_samples
    clips = torch.stack([torch.from_numpy(signals["3s"][:n]), torch.from_numpy(signals["10s"][SR:SR + n])])
    mag, phase = m.spectrogram(clips)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(3, *mag.shape[1:], generator=g)
    rows = torch.tensor([1, 0, 1])
    masked = mask * mag[rows]
    wave = m.input_transform(masked)
    want = istft(masked, phase[rows], m.stft_config, n)
    assert torch.allclose(wave, want, atol=1e-6) and m.phase_estimates == 0
    # silence is silence, without a phase estimate
    assert not m.input_transform(torch.zeros_like(mag[:1])).any() and m.phase_estimates == 0


def test_a_magnitude_from_nowhere_gets_griffin_lim_and_a_warning(model) -> None:
    m = _window(model, 1.0)
    g = torch.Generator().manual_seed(2)
    stray = torch.rand(1, m.n_freqs, m.n_frames, generator=g)
    with pytest.warns(UserWarning, match="Griffin-Lim"):
        emb = m.encode(stray).embedding
    assert m.phase_estimates == 1 and torch.isfinite(emb).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per model: no second warning
        m.encode(2.0 * m.spectrogram(torch.randn(1, m.window_samples, generator=g))[0])  # a mask above 1
    assert m.phase_estimates == 2


def test_memory_is_bounded_and_not_part_of_the_weights(model) -> None:
    m = _window(model, 1.0)
    m.phases.capacity = 3
    for k in range(5):
        m.spectrogram(torch.full((1, m.window_samples), 0.01 * (k + 1)).sin())
    assert len(m.phases.entries) == 3
    assert not any("phase" in k for k in m.state_dict())


# -- structure ------------------------------------------------------------------------


def test_model_facts(model) -> None:
    enc = model.pe.audio_encoder
    assert model.logit_scale == pytest.approx(float(model.pe.text_audio_logit_scale)) == 10.0
    assert model.sample_rate == 48000 and model.hop == 1920 and model.n_frames == 1001
    mods = dict(model.named_modules())
    stages = model.randomisable_blocks()
    assert all(mods[f"pe.{n}"] is b for n, b in stages)
    assert [n for n, _ in stages][0] == "audio_encoder.embedder.dac_encoder"
    assert [n for n, _ in stages][-1] == "audio_head"
    blocks = model.randomisable_blocks("block")
    assert len(blocks) == len(stages) - 1 + 3 + len(enc.embedder.dac_encoder.block)
    assert all(mods[f"pe.{n}"] is b for n, b in blocks)
    layer, reshape = model.gradcam_target()
    assert layer is enc.layers[-2]
    assert reshape(torch.randn(2, 251, 32)).shape == (2, 32, 1, 250)
    assert model.spec_id()["weights"] == model.fingerprint


def test_gradcam_layer_reaches_the_embedding(model, waves) -> None:
    """The GradCAM layer's frame tokens get non-zero gradients (after the last layer they would not)."""
    layer, reshape = model.gradcam_target()
    seen: list[torch.Tensor] = []

    def keep(mod, inp, out) -> None:
        out.retain_grad()
        seen.append(out)

    handle = layer.register_forward_hook(keep)
    try:
        mag = model.spectrogram(waves[:1])[0].requires_grad_(True)
        model.encode(mag).embedding.sum().backward()
    finally:
        handle.remove()
    grid = reshape(seen[0].grad)
    assert grid.shape[-1] == 250 and grid.abs().sum(dim=1).gt(0).float().mean() > 0.9


# -- registry, folders, preflight -----------------------------------------------------


def test_saved_folder_loads_the_same_model(tmp_path, model, signals) -> None:
    folder = save_random_pe_audio(tmp_path / "pe", seed=0)
    loaded = create_model(f"pe-audio:{folder}")
    assert loaded.name == f"pe-audio:{folder}" and not loaded.random_weights
    assert loaded.fingerprint == model.fingerprint
    x = signals["3s"]
    assert float(_cos_dist(ours(loaded, x), ours(model, x))) <= TOL
    assert torch.allclose(loaded.embed_text(["rain"]), model.embed_text(["rain"]), atol=1e-6)
    assert create_model("pe-audio", ckpt=str(folder)).fingerprint == model.fingerprint
    assert preflight_missing(f"pe-audio:{folder}", None) == []
    assert preflight_missing(f"pe-audio:{tmp_path / 'nope'}", None)
    # an hf:/pe-audio: mix-up is one clear line
    clap = save_random_pe_audio(tmp_path / "clap")
    cfg = json.loads((clap / "config.json").read_text())
    (clap / "config.json").write_text(json.dumps({**cfg, "model_type": "clap"}))
    with pytest.raises(UsageError, match="not 'pe_audio'"):
        create_model(f"pe-audio:{tmp_path / 'clap'}", ckpt="random")


def test_registry_and_family() -> None:
    assert "pe-audio" in describe_models() and "pe-audio:<repo-id-or-folder>" in describe_models()
    assert family_of("pe-audio").name == family_of("pe-audio:/x").name == "pe-audio"
    assert family_of("pe-audio").preset_for("pe-audio") == "hf"
    assert preflight_missing("pe-audio", "random") == []
    with pytest.raises(UsageError, match="--clap-ckpt random"):
        create_model("pe-audio")


@pytest.mark.slow
def test_named_random_model_is_the_default_architecture() -> None:
    """``--clap pe-audio --clap-ckpt random``: transformers' default PeAudioConfig (pe-av-large)."""
    from transformers import PeAudioConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_model("pe-audio", ckpt="random", seed=0)
    want, got = PeAudioConfig().to_dict(), m.pe.config.to_dict()
    for part in ("audio_config", "text_config"):
        for key, value in want[part].items():
            if key not in ("_name_or_path", "transformers_version", "dtype", "torch_dtype"):
                assert got[part][key] == value, (part, key)
    assert m.stub_tokenizer and m.random_weights and m.logit_scale == 10.0
