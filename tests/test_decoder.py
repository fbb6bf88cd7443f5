"""The LMAC-ZS decoder and explainer: shapes, ranges, mel->linear mapping, registry."""

from __future__ import annotations

import pytest
import torch

from lmaczs_cli.explainers import create_explainer, list_explainers
from lmaczs_cli.explainers.base import Explainer
from lmaczs_cli.explainers.decoder import MaskDecoder, _needs_transpose, mel_to_linear_matrix
from lmaczs_cli.explainers.lmaczs import LMACZS
from tests.fake_model import FakeModel, one_thread, toy_wave  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> FakeModel:
    torch.manual_seed(0)
    return FakeModel().eval()


def _batch(model: FakeModel, b: int = 3) -> torch.Tensor:
    n, sr = model.window_samples, model.sample_rate
    waves = torch.stack([toy_wave("mid tone beep", n, sr, i) for i in range(b)])
    return model.spectrogram(waves)[0]


@pytest.mark.parametrize("domain", ["stft", "mel"])
@torch.no_grad()
def test_masks_shape_and_range(model: FakeModel, domain: str) -> None:
    torch.manual_seed(0)
    dec = MaskDecoder.for_model(model, domain)
    ex = LMACZS(dec)
    mag = _batch(model, 3)
    text = model.embed_text(["low hum", "high whistle", "mid tone beep"])
    m = ex.masks(model, mag, text)
    assert m.shape == mag.shape == (3, model.n_freqs, model.n_frames)
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    pairs = ex.pair_masks(model, mag, text)
    assert pairs.shape == (3, 3, model.n_freqs, model.n_frames)
    # the paired masks are the diagonal of the all-pairs masks
    for i in range(3):
        torch.testing.assert_close(pairs[i, i], m[i], atol=1e-5, rtol=1e-5)
    # the mask depends on the prompt once FiLM is non-zero
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(0.1 * torch.randn_like(p))
    pairs = ex.pair_masks(model, mag, text)
    assert (pairs[0, 0] - pairs[0, 1]).abs().max() > 1e-4
    # any (clip, prompt) order gives the same masks as the grouped all-pairs layout
    idx, rows = torch.tensor([2, 0, 1, 2]), torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(ex._run(model, mag, None, text[rows], idx), pairs[idx, rows])


@pytest.mark.parametrize("sim_input", [True, False])
@torch.no_grad()
def test_similarity_input_can_be_switched_off(model: FakeModel, sim_input: bool) -> None:
    torch.manual_seed(0)
    dec = MaskDecoder.for_model(model, "stft", width=16, sim_input=sim_input)
    for p in dec.parameters():
        p.add_(0.5 * torch.randn_like(p))
    mag = _batch(model, 2)
    enc = model.encode(mag)
    text = model.embed_text(["low hum", "low hum"])
    idx = torch.arange(2)
    masks = [dec(enc.hidden, text, torch.full((2,), s), idx, mag) for s in (0.0, 0.8)]
    changed = float((masks[0] - masks[1]).abs().max())
    assert (changed > 1e-3) if sim_input else (changed == 0.0)
    assert dec.config.to_dict()["sim_input"] is sim_input  # saved with the checkpoint
    # checkpoints written before the option existed load as sim_input=True
    old = {k: v for k, v in dec.config.to_dict().items() if k != "sim_input"}
    assert type(dec.config).from_dict(old).sim_input is True


def test_config_records_probe_sizes(model: FakeModel) -> None:
    dec = MaskDecoder.for_model(model, "mel", width=16)
    cfg = dec.config
    enc = model.encode(_batch(model, 1))
    assert cfg.hidden_shapes == [list(h.shape[1:]) for h in enc.hidden]
    assert cfg.text_dim == enc.embedding.shape[-1]
    assert (cfg.n_freqs, cfg.n_mels, cfg.n_frames) == (model.n_freqs, model.n_mels, model.n_frames)
    assert cfg.transpose == [False, False]  # the fake model's maps are [mel, time]
    assert dec.gate is None  # the energy gate is an stft-domain feature


def test_mel_to_linear_all_ones_is_ones(model: FakeModel) -> None:
    w = mel_to_linear_matrix(model.mel_filterbank())
    assert w.shape == (model.n_freqs, model.n_mels)
    ones = w @ torch.ones(model.n_mels, 7)
    torch.testing.assert_close(ones, torch.ones(model.n_freqs, 7))
    assert float((w @ torch.zeros(model.n_mels, 7)).abs().max()) == 0.0
    assert float(w.min()) >= 0.0


def test_mel_to_linear_with_uncovered_bins() -> None:
    fb = torch.zeros(2, 6)
    fb[0, 1:3] = torch.tensor([0.5, 1.0])
    fb[1, 3:5] = torch.tensor([1.0, 0.5])
    w = mel_to_linear_matrix(fb)  # bins 0 and 5 are covered by no filter
    torch.testing.assert_close(w.sum(1), torch.ones(6))
    torch.testing.assert_close(w[0], w[1])  # nearest covered bin
    torch.testing.assert_close(w[5], w[4])


def test_mel_domain_all_ones_mask_maps_to_ones(model: FakeModel) -> None:
    dec = MaskDecoder.for_model(model, "mel")
    with torch.no_grad():
        dec.bias[-1].bias.fill_(50.0)  # sigmoid saturates: an all-ones mel mask
    mag = _batch(model, 2)
    m = LMACZS(dec).masks(model, mag, model.embed_text(["a", "b"]))
    torch.testing.assert_close(m, torch.ones_like(m))


def test_small_model_grid_if_available() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small.model")
    model = small.load_small(ckpt="random").eval()
    for domain in ("stft", "mel"):
        dec = MaskDecoder.for_model(model, domain, width=32)
        assert dec.config.transpose == [False] * len(dec.config.hidden_shapes)
        mag = torch.rand(2, model.n_freqs, model.n_frames)
        text = torch.nn.functional.normalize(torch.randn(2, dec.config.text_dim), dim=-1)
        with torch.no_grad():
            m = LMACZS(dec).masks(model, mag, text)
        assert m.shape == (2, 257, 501)
        assert 0.0 <= float(m.min()) and float(m.max()) <= 1.0


def test_transpose_heuristic() -> None:
    assert not _needs_transpose(32, 250, 64, 501)
    assert _needs_transpose(250, 32, 64, 501)
    assert not _needs_transpose(8, 8, 64, 1001)  # square maps stay as they are


def test_registry(model: FakeModel, tmp_path) -> None:
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.errors import UsageError

    assert {"lmaczs", "gradcam", "gradcam++", "smoothgrad", "ig"} <= set(list_explainers())
    with pytest.raises(UsageError, match="unknown method"):
        create_explainer("nope", model)
    with pytest.raises(UsageError, match="no decoder is bundled"):
        create_explainer("lmaczs", model)
    with pytest.raises(UsageError, match="no mel-domain decoder is bundled for --clap fake"):
        create_explainer("lmaczs", model, mask_domain="mel")
    with pytest.raises(UsageError, match="--mask-domain 'fft': expected one of stft, mel"):
        create_explainer("lmaczs", model, mask_domain="fft")
    path = tmp_path / "d.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(model, "mel", width=16), model.spec_id()))
    ex = create_explainer("lmaczs", model, decoder=path, mask_domain="mel")
    assert isinstance(ex, LMACZS) and isinstance(ex, Explainer) and ex.domain == "mel"
    assert not any(p.requires_grad for p in ex.decoder.parameters())
    with pytest.raises(UsageError, match="'mel' domain"):
        create_explainer("lmaczs", model, decoder=path, mask_domain="stft")


def test_export_names_the_decoder_by_its_domain(tmp_path) -> None:
    import json

    from lmaczs_cli.checkpoints import FORMAT
    from lmaczs_cli.jobs.groundtruth import export_decoder

    for domain, name in (("stft", "decoder"), ("mel", "decoder_mel")):
        run = tmp_path / domain
        run.mkdir()
        # best.pt holds step 6 (as with --select last), not the lowest validation loss (step 3)
        torch.save({"format": FORMAT, "format_version": 1, "domain": domain, "metrics": {"step": 6}},
                   run / "best.pt")
        cfg = {"argv": ["lmaczs", "train", "--mask-domain", domain], "seed": 0, "model_spec": {},
               "mask_domain": domain, "decoder_config": {}, "weights": {}, "lmaczs_version": "x",
               "torch_version": "y"}
        (run / "config.json").write_text(json.dumps(cfg))
        (run / "log.jsonl").write_text("".join(json.dumps({"event": "val", "step": k, "val_loss": loss,
                                                           "mae": mae, "time": 5.0}) + "\n"
                                               for k, loss, mae in ((3, 0.1, 0.02), (6, 0.2, 0.03))))
        export_decoder(run, tmp_path / "assets", {"groundtruth": {"pointing": 0.5}})
        assert torch.load(tmp_path / "assets" / f"{name}.pt", weights_only=True)["domain"] == domain
        card = json.loads((tmp_path / "assets" / f"{name}_card.json").read_text())
        assert card["mask_domain"] == domain and card["command"] == f"lmaczs train --mask-domain {domain}"
        assert card["best_step"] == 6 and card["steps"] == 6
        assert card["val_metrics"] == {"mae": 0.03} and card["groundtruth"] == {"pointing": 0.5}
    assert sorted(p.name for p in (tmp_path / "assets").iterdir()) == [
        "decoder.pt", "decoder_card.json", "decoder_mel.pt", "decoder_mel_card.json"
    ]


@pytest.mark.parametrize("domain", ["stft", "mel"])
def test_bundled_small_decoder_loads(domain: str) -> None:
    from lmaczs_cli.explainers.lmaczs import default_decoder_path

    small = pytest.importorskip("lmaczs_cli.models.small.model")
    model = small.load_small().eval()
    if not default_decoder_path(model.name, domain).is_file():
        pytest.skip(f"no bundled {domain} decoder for the small model")
    ex = create_explainer("lmaczs", model, mask_domain=domain)
    assert ex.domain == domain
    if domain == "stft":
        assert create_explainer("lmaczs", model).domain == "stft"  # the default
    mag = torch.rand(2, model.n_freqs, model.n_frames)
    text = torch.nn.functional.normalize(torch.randn(2, ex.decoder.config.text_dim), dim=-1)
    with torch.no_grad():
        m = ex.masks(model, mag, text)
    assert m.shape == (2, 257, 501) and 0.0 <= float(m.min()) and float(m.max()) <= 1.0


@torch.no_grad()
def test_feature_gate_slope_comes_from_the_head(model: FakeModel) -> None:
    """``--gate-source features``: logit M = head logits + slope(t, h) * z, z the standardised log-|X|."""
    from lmaczs_cli.explainers.decoder import _standardised_log

    torch.manual_seed(0)
    dec = MaskDecoder.for_model(model, "stft", width=16, sim_input=False, gate_source="features")
    assert dec.gate is None and dec.head.out_channels == 2
    assert float(dec.head.weight[1].abs().max()) == 0.0  # the slope starts at 0, as the prompt gate does
    mag = _batch(model, 2)
    enc = model.encode(mag)
    text = model.embed_text(["low hum", "high whistle", "low hum"])
    idx = torch.tensor([0, 1, 1])
    base = dec(enc.hidden, text, torch.zeros(3), idx, mag).double()
    dec.head.bias[1] = 0.7  # a constant slope map: rows of mel_to_linear sum to 1, so it stays 0.7
    gated = dec(enc.hidden, text, torch.zeros(3), idx, mag).double()
    z = _standardised_log(mag).double()[idx]
    want = torch.logit(base) + 0.7 * z
    torch.testing.assert_close(torch.logit(gated), want, atol=2e-3, rtol=1e-3)
    # a slope that reads the features changes with them, per bin
    dec.head.weight[1].normal_(0, 0.5)
    other = dec(enc.hidden, text, torch.zeros(3), idx, mag).double()
    shifted = dec([h.flip(-1) for h in enc.hidden], text, torch.zeros(3), idx, mag).double()
    assert float((other - gated).abs().max()) > 1e-3
    assert float((other - shifted).abs().max()) > 1e-3
    cfg = dec.config.to_dict()
    assert cfg["gate_source"] == "features"
    older = {k: v for k, v in cfg.items() if k != "gate_source"}  # a checkpoint from before the option
    assert type(dec.config).from_dict(older).gate_source == "prompt"
    with pytest.raises(ValueError, match="gate source"):
        MaskDecoder.for_model(model, "stft", gate_source="energy")
