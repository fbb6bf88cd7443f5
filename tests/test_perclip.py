"""Per-clip LMAC-ZS, the evidence objective, the trivial reference masks and the event tally."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from lmaczs_cli.explainers import create_explainer
from lmaczs_cli.explainers.perclip import PerClipLMACZS
from lmaczs_cli.jobs.groundtruth import EventTally
from lmaczs_cli.objective import EvidenceWeights, LossWeights, evidence_terms, lmaczs_objective
from tests.fake_model import FakeModel, one_thread, toy_wave  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_evidence_terms_match_hand_computation() -> None:
    s = torch.tensor([0.6, 0.2, 0.5])
    s_in = torch.tensor([0.4, 0.5, 0.48])  # falls 0.2 below, rises 0.3 above, falls 0.02 below
    s_out = torch.tensor([0.5, 0.1, 0.3])
    tau = torch.tensor([0.3, 0.3, 0.3])
    size = torch.tensor([0.1, 0.5, 1.0])
    t = evidence_terms(s, s_in, s_out, tau, size, EvidenceWeights(margin=0.05, residual=0.2, l1=0.5))
    # keep: relu(s - s~ - 0.05) = [0.15, 0, 0]; residual: relu(s_out - 0.3) = [0.2, 0, 0]
    torch.testing.assert_close(t["keep"], torch.tensor([0.15, 0.0, 0.0]))
    torch.testing.assert_close(t["residual"], torch.tensor([0.2, 0.0, 0.0]))
    torch.testing.assert_close(t["total"], torch.tensor([0.15 + 0.04 + 0.05, 0.25, 0.5]))


def test_one_sided_similarity_loss_ignores_a_mask_that_matches_better() -> None:
    # encode = normalize(sum over time): clip 1 = [3, 4] -> a = [.6, .8]; prompt t = [1, 0], s = .6
    from tests.test_objective import Stub

    x = torch.tensor([[3.0, 4.0]])[:, :, None].repeat(1, 1, 2)
    text = torch.tensor([[1.0, 0.0]])
    keep_bin0 = torch.tensor([[1.0, 0.0]])[None, :, :, None].repeat(1, 1, 1, 2)  # s~ = 1 > s
    sym = LossWeights(l1=0.0, out=0.0, div=0.0, l1_on="mask")
    one = LossWeights(l1=0.0, out=0.0, div=0.0, l1_on="mask", sim_loss="one_sided")
    own = torch.tensor([0])
    r_sym = lmaczs_objective(Stub(), x, text, own, lambda m, e, t: keep_bin0, sym)
    r_one = lmaczs_objective(Stub(), x, text, own, lambda m, e, t: keep_bin0, one)
    assert r_sym.parts["sim"] == pytest.approx(0.4**2)
    assert r_one.parts["sim"] == 0.0
    drop_bin0 = 1 - keep_bin0  # s~ = 0: one-sided counts the whole fall, linearly
    r_drop = lmaczs_objective(Stub(), x, text, own, lambda m, e, t: drop_bin0, one)
    assert r_drop.parts["sim"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="sim_loss"):
        LossWeights(sim_loss="both")


def _fake_clips(model: FakeModel, captions: list[str]) -> torch.Tensor:
    waves = [toy_wave(c, model.window_samples, model.sample_rate, i) for i, c in enumerate(captions)]
    return model.spectrogram(torch.stack(waves))[0]


def test_perclip_masks_are_bounded_reproducible_and_lower_the_objective() -> None:
    model = FakeModel().eval()
    captions = ["low hum", "high whistle"]
    mag = _fake_clips(model, captions)
    text = model.embed_text(captions)
    ex = PerClipLMACZS(steps=40, patience=100, seed=3)
    m1 = ex.masks(model, mag, text)
    m2 = PerClipLMACZS(steps=40, patience=100, seed=3).masks(model, mag, text)
    assert m1.shape == mag.shape and not m1.requires_grad
    assert float(m1.min()) >= 0.0 and float(m1.max()) <= 1.0
    torch.testing.assert_close(m1, m2)  # seeded: the same masks
    # the optimised masks score better on the objective than the constant initial ones
    with torch.no_grad():
        a = model.encode(mag).embedding
        s = (a * text).sum(-1)
        silent = model.encode(torch.zeros_like(mag[:1])).embedding
        tau = (silent * text).sum(-1)

        def objective(m: torch.Tensor) -> float:
            s_in = (model.encode(m * mag).embedding * text).sum(-1)
            s_out = (model.encode((1 - m) * mag).embedding * text).sum(-1)
            return float(evidence_terms(s, s_in, s_out, tau, m.mean((-2, -1)), ex.weights)["total"].sum())

        assert objective(m1) < objective(torch.full_like(m1, 0.5)) - 1e-3


def test_perclip_early_stopping_and_registry() -> None:
    model = FakeModel().eval()
    mag = _fake_clips(model, ["low hum"])
    text = model.embed_text(["low hum"])
    ex = create_explainer("lmaczs-perclip", model, steps=500, seed=0)
    ex.patience, ex.tol = 5, 10.0  # nothing improves by 10: stops after 5 stale steps
    ex.masks(model, mag, text)
    assert ex.last_steps == 6
    with pytest.raises(ValueError, match="steps"):
        PerClipLMACZS(steps=0)


def test_trivial_masks() -> None:
    model = FakeModel().eval()
    mag = _fake_clips(model, ["low hum", "high whistle"])
    text = model.embed_text(["a", "b"])
    assert torch.equal(create_explainer("all-ones", model).masks(model, mag, text), torch.ones_like(mag))
    assert torch.equal(create_explainer("empty", model).masks(model, mag, text), torch.zeros_like(mag))
    r1 = create_explainer("random-rectangle", model, seed=4).masks(model, mag, text)
    r2 = create_explainer("random-rectangle", model, seed=4).masks(model, mag, text)
    assert torch.equal(r1, r2)
    for m in r1:  # one box of ones: its rows and columns span exactly the nonzero region
        rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
        box = m[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert bool((box == 1).all()) and float(m.sum()) == box.numel()
        assert 0.1 * mag.shape[1] - 1 <= len(rows) <= 0.6 * mag.shape[1]


def test_event_tally_gain_quiet_recall_and_classes() -> None:
    # a 2 x 2 clip: the loud event owns bin (0, 0), the quiet one bin (1, 1)
    mag = torch.tensor([[[10.0, 0.0], [0.0, 1.0]]])
    loud = torch.tensor([[[True, False], [False, False]]])
    quiet = torch.tensor([[[False, False], [False, True]]])
    only_quiet = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    tally = EventTally()
    tally.add(only_quiet, mag, quiet, True, 0.0, "knock")  # hit; not the loudest
    tally.add(only_quiet, mag, loud, True, 0.2, "bell")  # miss; the loudest
    m = tally.metrics()
    assert m["pointing"] == 0.5 and m["pointing_not_loudest"] == 1.0 and m["pointing_loudest"] == 0.0
    assert m["pointing_gain"] == 0.0  # one gained, one lost against the all-ones mask
    # the quiet event holds 1 / 101 of the power: its recall (1.0) is the quiet recall
    assert m["quiet_events"] == 1 and m["quiet_recall"] == 1.0
    by_class = m["pointing_not_loudest_by_class"]
    assert np.isnan(by_class["bell"]) and by_class["knock"] == 1.0  # bell was only ever the loudest
    assert m["pointing_within_0.05"] == 0.5
    lo, hi = m["ci95"]["pointing"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0


def test_event_tally_splits_quiet_recall_by_what_the_model_hears() -> None:
    mag = torch.tensor([[[10.0, 0.0], [0.0, 1.0]]])
    quiet = torch.tensor([[[False, False], [False, True]]])
    tally = EventTally()
    tally.add(torch.tensor([[[0.0, 0.0], [0.0, 1.0]]]), mag, quiet, True, 0.0, "knock", heard=True)
    tally.add(torch.tensor([[[0.0, 0.0], [0.0, 0.25]]]), mag, quiet, True, 0.0, "rain", heard=False)
    m = tally.metrics()
    assert m["quiet_events"] == 2 and m["quiet_recall"] == 0.625  # (1 + 0.25) / 2
    assert m["quiet_events_heard"] == 1 and m["quiet_recall_heard"] == 1.0  # the unheard rain left out


def test_class_term_matches_hand_computation() -> None:
    # clip [3, 4] -> a = [.6, .8]; prompts t_0 = [1, 0] (the clip's own caption), t_1 = [0, 1]
    import math

    from tests.test_objective import Stub

    x = torch.tensor([[3.0, 4.0]])[:, :, None].repeat(1, 1, 2)
    text = torch.eye(2)
    masks = torch.ones(1, 2, 2, 2)  # a~ = a = [.6, .8] for both prompts
    w = LossWeights(l1=0.0, out=0.0, div=0.0, l1_on="mask", cls=1.0, out_ref="clip")
    r = lmaczs_objective(Stub(), x, text, torch.tensor([0]), lambda m, e, t: masks, w)
    scale = 1 / 0.07  # the stub has no logit_scale: CLIP's default
    # pair (0, 0), the own caption: softmax over both prompts of scale * [.6, .8], class 0;
    # pair (0, 1): the own caption is no rival, so prompt 1 is alone: cross-entropy 0
    assert r.parts["cls"] == pytest.approx(math.log1p(math.exp(0.2 * scale)) / 2, rel=1e-5)


@pytest.mark.slow
def test_groundtruth_command_scores_several_methods_in_one_table(capsys: pytest.CaptureFixture) -> None:
    import json

    from lmaczs_cli.dev.groundtruth import main

    assert main(["--n", "3", "--scenes", "crowded", "--method", "all-ones", "--method", "empty",
                 "--method", "random-rectangle", "--table"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert set(res) == {"all-ones", "empty", "random-rectangle"}
    ones, empty = res["all-ones"], res["empty"]
    assert ones["heldout"]["scenes"] == "crowded" and ones["pointing_events"] >= 9  # 3-5 events a scene
    # keeping everything: nothing gained over itself, every event fully recalled, s kept exactly
    assert ones["pointing_gain"] == 0.0 and ones["recall"] == 1.0 and ones["mae"] < 1e-5
    assert empty["recall"] == 0.0 and empty["mask_mean_present"] == 0.0
    assert "| random-rectangle |" in err and "pointing_gain" in err.splitlines()[0]


def test_decoder_skip_reads_only_the_deeper_maps() -> None:
    from lmaczs_cli.explainers.decoder import MaskDecoder

    model = FakeModel().eval()
    mag = _fake_clips(model, ["low hum", "high whistle"])
    text = model.embed_text(["low hum", "high whistle"])
    enc = model.encode(mag)
    dec = MaskDecoder.for_model(model, "mel", width=16, sim_input=False, skip=1).eval()
    assert len(dec.laterals) == len(enc.hidden) - 1 and dec.config.skip == 1
    idx = torch.arange(2)
    with torch.no_grad():
        m = dec(enc.hidden, text, torch.zeros(2), idx)
        scrambled = [torch.randn_like(enc.hidden[0])] + enc.hidden[1:]  # the skipped map changes
        torch.testing.assert_close(dec(scrambled, text, torch.zeros(2), idx), m)
        deep = enc.hidden[:-1] + [torch.randn_like(enc.hidden[-1])]  # a read map changes
        assert not torch.allclose(dec(deep, text, torch.zeros(2), idx), m)
    assert m.shape == mag.shape
    with pytest.raises(ValueError, match="skip"):
        MaskDecoder.for_model(model, "mel", skip=len(enc.hidden))


@pytest.mark.slow
@pytest.mark.parametrize("clap", ["laion-htsat-tiny", "ms-clap-2022", "hf-htsat-tiny"])
def test_explain_with_weights_alone_runs_per_clip_and_says_so(tmp_path: Path, clap: str) -> None:
    """No decoder anywhere (a bare home): the headline command explains per clip, in one line
    says how, and the row, run.json and the map name the method."""
    import subprocess
    import sys

    from tests.test_preflight import SCENE, _bare_env

    out = tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-m", "lmaczs_cli", "explain", str(SCENE), "--clap", clap, "--clap-ckpt", "random",
         "--prompt", "dog barking", "--perclip-steps", "2", "--out", str(out)],
        env=_bare_env(tmp_path / "home"), cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("explaining per clip instead (method lmaczs-perclip") == 1
    with (out / "results.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["method"] == "lmaczs-perclip" and row["status"] == "ok" and row["decoder"] == ""
    assert "lmaczs-perclip" in (out / "run.json").read_text()
    assert Path(row["png"]).parent.name == "lmaczs-perclip" and Path(row["wav"]).is_file()
