"""MS-CLAP 2022/2023: our differentiable front end reproduces the package's own embeddings.

The models are the real CNN14 + BERT (2022) and HTSAT + GPT-2 (2023) architectures
with seeded random weights; the reference is a real ``msclap.CLAPWrapper``
(``get_audio_embeddings`` from WAV files, ``get_text_embeddings``) reading the same
weights from a checkpoint file, with only its downloads stubbed
(:mod:`lmaczs_cli.models.msclap.reference`). Nothing here touches the network.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lmaczs_cli.audio import load_audio
from lmaczs_cli.errors import AudioError
from lmaczs_cli.models.msclap.model import MsClap, build_msclap
from lmaczs_cli.models.msclap.reference import package_wrapper
from lmaczs_cli.models.msclap.text import bert_vocab_dir, load_bert_tokenizer
from tests.helpers_msclap import make_gpt2_stub_tokenizer, write_clips

TOL = 1e-6  # cosine distance
PROMPTS = ["this is a sound of dog barking", "rain", "a cat"]
LONG = "this is a sound of " + "rain " * 120  # > 100 and > 77 tokens: never truncated


def _cos_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(a.double(), b.double(), dim=-1)


class Setup:
    """One version's model, the package's wrapper on the same weights, and test clips."""

    def __init__(self, version: str, tmp: Path) -> None:
        from transformers import GPT2Tokenizer

        self.version = version
        tok_dir = make_gpt2_stub_tokenizer(tmp / "gpt2") if version == "2023" else None
        with pytest.warns(UserWarning, match="RANDOM weights"):
            self.model: MsClap = build_msclap(version, "random", tok_dir, seed=0)
        raw = (load_bert_tokenizer(bert_vocab_dir()) if version == "2022"
               else GPT2Tokenizer.from_pretrained(str(tok_dir), local_files_only=True))
        self.checkpoint = tmp / f"CLAP_weights_{version}.pth"
        self.pkg = package_wrapper(self.model, raw, self.checkpoint)
        w = int(self.model.window_seconds)
        self.cases = {f"{w}s": (w, 44100), "3s": (3, 44100), "12s": (12, 44100),
                      "3s@16k": (3, 16000), "10s@48k": (10, 48000)}
        self.files = write_clips(tmp / "clips", self.cases)

    def package_audio(self, names: list[str], seed: int) -> tuple[torch.Tensor, list[int]]:
        """The package's embeddings and the crop offsets its ``random.randrange`` drew."""
        state = random.getstate()
        try:
            random.seed(seed)
            emb = self.pkg.get_audio_embeddings([str(self.files[n]) for n in names])
        finally:
            random.setstate(state)
        draws, n_win, offsets = random.Random(seed), self.model.window_samples, []
        for name in names:
            n = load_audio(self.files[name], 44100).wave.shape[0]
            offsets.append(draws.randrange(n - n_win) if n > n_win else 0)
        return emb, offsets

    def ours(self, names: list[str], offsets: list[int]) -> torch.Tensor:
        m = self.model
        waves = [m.fit_window(load_audio(self.files[n], m.sample_rate).wave, offset=o).wave
                 for n, o in zip(names, offsets, strict=True)]
        with torch.no_grad():
            return m.encode(m.spectrogram(torch.stack(waves))[0]).embedding


@pytest.fixture(scope="module", params=["2022", "2023"])
def setup(request, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(request.param, tmp_path_factory.mktemp(f"msclap{request.param}"))


def _logmel_with(model: MsClap, mag: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """log-mel [B, 64, T] through a given filterbank [64, 513] (torchlibrosa's dB rule)."""
    mel = torch.einsum("mf,bft->bmt", fb, mag.pow(2))
    return 10.0 * torch.log10(mel.clamp_min(1e-10))


# -- the core claim ---------------------------------------------------------------------


@pytest.mark.slow
def test_audio_embeddings_match_package(setup: Setup) -> None:
    """Window-length, short (tiled), long (randomly cropped), resampled 16 and 48 kHz clips."""
    names = list(setup.cases)
    ref, offsets = setup.package_audio(names, seed=5)
    assert ref.shape == (len(names), 1024)
    assert all(o > 0 for n, o in zip(names, offsets, strict=True) if n in ("12s", "10s@48k"))
    ours = setup.ours(names, offsets)
    dist = _cos_dist(ours, ref)
    print(f"ms-clap-{setup.version} parity (1 - cos): "
          + ", ".join(f"{n} {float(d):.1e}" for n, d in zip(names, dist, strict=True)))
    assert float(dist.abs().max()) < TOL
    # the clips themselves are far apart, so TOL is a real constraint
    assert float(_cos_dist(ref[0], ref[1])) > 1e4 * TOL


@pytest.mark.slow
def test_negative_controls_fail_far_above_tolerance(setup: Setup) -> None:
    """Wrong padding rule, wrong filterbank, wrong crop: each is far off the package."""
    m = setup.model
    ref, offsets = setup.package_audio(["3s", "12s"], seed=11)
    x3 = load_audio(setup.files["3s"], 44100).wave
    laion_rule = torch.zeros(m.window_samples)  # floor(N_win / N) copies, then zeros
    reps = m.window_samples // x3.shape[0]
    laion_rule[: reps * x3.shape[0]] = x3.repeat(reps)
    mag = m.spectrogram(torch.stack([m.fit_window(x3).wave, laion_rule]))[0]
    from lmaczs_cli.models.msclap.model import build_clap

    other = build_clap("2023" if setup.version == "2022" else "2022", seed=0)[0]
    other_fb = (other.audio_encoder.base.htsat if setup.version == "2022"
                else other.audio_encoder.base).logmel_extractor.melW.detach().T
    with torch.no_grad():
        right = m.encode(mag[:1]).embedding
        wrong_pad = m.encode(mag[1:]).embedding
        wrong_fb = m.encode_features(_logmel_with(m, mag[:1], other_fb)).embedding
        own_fb = m.encode_features(_logmel_with(m, mag[:1], m.mel_filterbank())).embedding
    n_long = load_audio(setup.files["12s"], 44100).wave.shape[0] - m.window_samples
    other_crop = n_long - 1 if offsets[1] < n_long // 2 else 0
    wrong_crop = setup.ours(["12s"], [other_crop])
    d = {"right": float(_cos_dist(right[0], ref[0])),
         "own filterbank by hand": float(_cos_dist(own_fb[0], ref[0])),
         "padding": float(_cos_dist(wrong_pad[0], ref[0])),
         "filterbank": float(_cos_dist(wrong_fb[0], ref[0])),
         "crop": float(_cos_dist(wrong_crop[0], ref[1]))}
    print(f"ms-clap-{setup.version} controls (1 - cos): {d}")
    assert d["right"] < TOL and d["own filterbank by hand"] < 10 * TOL
    assert min(d["padding"], d["filterbank"], d["crop"]) > 100 * TOL


@pytest.mark.slow
def test_text_embeddings_match_package(setup: Setup) -> None:
    ours = setup.model.embed_text([*PROMPTS, LONG])
    with torch.no_grad():
        ref = setup.pkg.get_text_embeddings(PROMPTS)
        ref_long = setup.pkg.get_text_embeddings([LONG])  # alone: its length differs
    dist = _cos_dist(ours, torch.cat([ref, ref_long]))
    print(f"ms-clap-{setup.version} text parity (1 - cos): {[f'{float(x):.1e}' for x in dist]}")
    assert float(dist.abs().max()) < TOL
    assert float(_cos_dist(ours[0], ours[1])) > 1e4 * TOL
    tokens = setup.model.tokenize(PROMPTS)
    assert tokens["input_ids"].shape == (3, 100 if setup.version == "2022" else 77)
    assert setup.model.tokenize([LONG])["input_ids"].shape[1] > 100


# -- pieces and facts ----------------------------------------------------------------


@pytest.mark.slow
def test_front_end_matches_package_modules(setup: Setup) -> None:
    """Our |STFT| -> log-mel equals the module's own torchlibrosa Spectrogram -> log-mel."""
    m = setup.model
    wave = m.fit_window(load_audio(setup.files["3s"], 44100).wave).wave[None]
    with torch.no_grad():
        ours = m.input_transform(m.spectrogram(wave)[0])
        fe = m.frontend
        theirs = fe.logmel_extractor(fe.spectrogram_extractor(wave))[:, 0].transpose(1, 2)
    assert ours.shape == theirs.shape == (1, 64, m.n_frames)
    diff = (ours - theirs).abs()
    assert float(diff.median()) < 1e-3 and float(diff.max()) < 0.5


@pytest.mark.slow
def test_mel_filterbank_is_the_one_the_module_uses(setup: Setup) -> None:
    """2022: slaney mel at 44.1 kHz, 50-14000 Hz; 2023: HTSAT's config.py values
    (32 kHz, 50-14000 Hz), not the YAML's (44.1 kHz, 8000 Hz)."""
    import librosa

    sr, fmax = (44100, 14000) if setup.version == "2022" else (32000, 14000)
    expect = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=1024, n_mels=64, fmin=50, fmax=fmax))
    fb = setup.model.mel_filterbank()
    assert fb.shape == (64, 513)
    assert torch.allclose(fb, expect.float(), atol=1e-6)
    yaml_fb = torch.from_numpy(librosa.filters.mel(sr=44100, n_fft=1024, n_mels=64, fmin=50, fmax=8000))
    assert not torch.allclose(fb, yaml_fb.float(), atol=1e-3)


@pytest.mark.slow
def test_model_facts(setup: Setup) -> None:
    m = setup.model
    w = 220500 if setup.version == "2022" else 308700
    assert (m.sample_rate, m.window_samples, m.n_frames) == (44100, w, w // 320 + 1)
    assert m.logit_scale == pytest.approx(1 / 0.07, rel=1e-6)
    mag = m.spectrogram(m.fit_window(torch.zeros(1000) + 0.1).wave[None])[0]
    with torch.no_grad():
        hidden = m.encode(mag).hidden
    names = [n for n, _ in m.randomisable_blocks()]
    mods = dict(m.named_modules())
    assert all(mods[f"clap.{n}"] is b for n, b in m.randomisable_blocks())
    layer, reshape = m.gradcam_target()
    if setup.version == "2022":
        assert [tuple(h.shape) for h in hidden] == [
            (1, 64, 32, 345), (1, 128, 16, 172), (1, 256, 8, 86), (1, 512, 4, 43),
            (1, 1024, 2, 21), (1, 2048, 2, 21)]
        assert names == [*(f"audio_encoder.base.conv_block{i}" for i in range(1, 7)),
                         "audio_encoder.base.fc1", "audio_encoder.projection"]
        assert layer is m.frontend.conv_block6
        assert reshape(torch.zeros(1, 2048, 21, 2)).shape == (1, 2048, 2, 21)
    else:
        assert [tuple(h.shape) for h in hidden] == [
            (1, 96, 16, 256), (1, 192, 8, 128), (1, 384, 4, 64), (1, 768, 2, 32)]
        assert names == ["audio_encoder.base.htsat.patch_embed",
                         *(f"audio_encoder.base.htsat.layers.{i}" for i in range(4)),
                         "audio_encoder.base.htsat.norm", "audio_encoder.projection"]
        assert layer is m.frontend.norm
        assert reshape(torch.zeros(1, 64, 768)).shape == (1, 768, 2, 32)


@pytest.mark.slow
def test_hidden_maps_are_freq_by_time(setup: Setup) -> None:
    """Damping only the last frames leaves the start of the first map untouched and changes its
    end (columns are time); damping only high bins changes top rows first (rows are freq)."""
    m = setup.model
    wave = m.fit_window(load_audio(setup.files["3s"], 44100).wave).wave[None]
    mag = m.spectrogram(wave)[0]
    late, high = mag.clone(), mag.clone()
    late[..., int(0.85 * mag.shape[-1]):] *= 0.1
    high[:, 300:] *= 0.01
    with torch.no_grad():
        h0, h_late, h_high = (m.encode(x).hidden[0] for x in (mag, late, high))
    width, rows = h0.shape[-1], h0.shape[-2]
    assert torch.allclose(h0[..., : width // 2], h_late[..., : width // 2], atol=1e-5)
    assert float((h0[..., -width // 10:] - h_late[..., -width // 10:]).abs().mean()) > 1e-2
    low_change = float((h0[..., : rows // 4, :] - h_high[..., : rows // 4, :]).abs().mean())
    top_change = float((h0[..., -rows // 4:, :] - h_high[..., -rows // 4:, :]).abs().mean())
    assert top_change > 5 * low_change


@pytest.mark.slow
def test_fit_window_follows_the_package_rule(setup: Setup) -> None:
    m = setup.model
    n = m.window_samples
    x = torch.arange(1, 3 * 44100 + 1, dtype=torch.float32)
    w = m.fit_window(x)
    reps = -(-n // x.shape[0])  # ceil: the last copy is partial, no zeros
    assert w.valid == x.shape[0] and torch.equal(w.wave, x.repeat(reps)[:n])
    assert bool((w.wave != 0).all())
    exact = torch.randn(n)
    assert torch.equal(m.fit_window(exact).wave, exact) and m.fit_window(exact).valid == n
    long = torch.randn(n + 5000)
    w = m.fit_window(long, offset=1234)
    assert w.valid == n and torch.equal(w.wave, long[1234 : 1234 + n])
    with pytest.raises(ValueError, match="offset"):
        m.fit_window(long, offset=5001)
    with pytest.raises(AudioError, match="empty"):
        m.fit_window(torch.zeros(0))


@pytest.mark.slow
def test_checkpoint_round_trip_is_exact(setup: Setup) -> None:
    """The file the package read loads strictly into a fresh model built with another seed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*RANDOM.*")  # a real file: no such warning
        loaded = build_msclap(setup.version, str(setup.checkpoint), setup.model._tokenizer_dir,
                              seed=123)
    assert loaded.checkpoint == setup.checkpoint.name
    mag = setup.model.spectrogram(setup.model.fit_window(torch.randn(30000) * 0.1).wave[None])[0]
    with torch.no_grad():
        assert torch.equal(loaded.encode(mag).embedding, setup.model.encode(mag).embedding)
    setup.model.clear_text_cache()
    assert torch.allclose(loaded.embed_text(PROMPTS), setup.model.embed_text(PROMPTS), atol=1e-6)
