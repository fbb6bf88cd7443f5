"""The LMAC-ZS objective: invariants, a hand-computed case, frozen model, learnability."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lmaczs_cli.explainers.decoder import MaskDecoder
from lmaczs_cli.explainers.lmaczs import LMACZS
from lmaczs_cli.models.base import Encoded
from lmaczs_cli.objective import (
    LossWeights,
    finalize_stats,
    kept_share,
    lmaczs_objective,
    masked_similarity,
    pair_stats,
)
from tests.fake_model import FakeModel, one_thread, toy_wave  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


class Stub:
    """encode(X) = normalize(sum_t X): a model whose similarities are easy to do by hand."""

    def encode(self, magnitude: torch.Tensor) -> Encoded:
        return Encoded(F.normalize(magnitude.sum(-1), dim=-1), [])


def _clips(model: FakeModel, captions: list[str]) -> torch.Tensor:
    waves = [toy_wave(c, model.window_samples, model.sample_rate, i) for i, c in enumerate(captions)]
    return model.spectrogram(torch.stack(waves))[0]


def test_all_ones_mask_keeps_the_similarity() -> None:
    model = FakeModel().eval()
    captions = ["low hum", "high whistle", "mid tone beep"]
    mag = _clips(model, captions)
    text = model.embed_text(captions)
    with torch.no_grad():
        s = model.similarity(mag, text)
        st, emb = masked_similarity(model, mag, torch.ones(3, 3, *mag.shape[1:]), text)
    torch.testing.assert_close(st, s, atol=1e-6, rtol=0)
    assert emb.shape == (3, 3, text.shape[1])


def test_loss_matches_hand_computation() -> None:
    # two clips (F=2 bins, T=2 identical frames) and two prompts
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])[:, :, None].repeat(1, 1, 2)  # a_1=[.6,.8], a_2=[1,0]
    text = torch.eye(2)  # t_1=[1,0], t_2=[0,1]  -> s = [[.6,.8],[1,0]]
    masks = torch.tensor([
        [[1.0, 0.0], [1.0, 1.0]],  # M_11 keeps bin 0 -> s~_11 = 1;  M_12 = ones -> s~_12 = .8
        [[0.5, 0.5], [0.0, 1.0]],  # M_21 halves X_2 -> s~_21 = 1;   M_22 keeps nothing -> s~_22 = 0
    ])[:, :, :, None].repeat(1, 1, 1, 2)
    own = torch.tensor([0, 0])  # both clips' captions are prompt 1
    # the spec's terms: L1 on the mask mean, L_out on own pairs, L_div against s itself
    w = LossWeights(l1=0.1, tv=0.2, out=0.3, div=0.5, out_pairs="own", l1_on="mask", div_target="s")
    res = lmaczs_objective(Stub(), x, text, own, lambda m, e, t: masks, w)
    l_sim = (0.6 - 1.0) ** 2 / 4  # only pair (1,1) differs
    mask_mean = (0.5 + 1 + 0.5 + 0.5) / 4
    tv = (1 + 0 + 0 + 1) / 4  # frequency steps of each mask; constant in time
    # L_out: clip 1 keeps (1-M_11) X_1 = [0,4] -> t_1.a = 0; clip 2 keeps [.5,0] -> t_1.a = 1
    l_out = (0 + 1) / 2
    mm, s = [0.5, 1.0, 0.5, 0.5], [0.6, 0.8, 1.0, 0.0]
    mx, my = sum(mm) / 4, sum(s) / 4
    cov = sum((a - mx) * (b - my) for a, b in zip(mm, s, strict=True))
    r = cov / math.sqrt(sum((a - mx) ** 2 for a in mm) * sum((b - my) ** 2 for b in s))
    assert r == pytest.approx(0.308607, abs=1e-6)
    expected = l_sim + 0.1 * mask_mean + 0.2 * tv + 0.3 * l_out + 0.5 * (1 - r)
    assert expected == pytest.approx(0.698197, abs=1e-6)
    assert float(res.total) == pytest.approx(expected, abs=1e-6)
    assert res.parts["sim"] == pytest.approx(l_sim, abs=1e-7)
    assert res.parts["l1"] == pytest.approx(mask_mean)
    assert res.parts["tv"] == pytest.approx(tv)
    assert res.parts["out"] == pytest.approx(l_out)
    assert res.parts["div"] == pytest.approx(1 - r, abs=1e-6)
    torch.testing.assert_close(res.masked_sims, torch.tensor([[1.0, 0.8], [1.0, 0.0]]))
    # "matching" L_out: pairs with s above the batch mean (.6) plus own pairs, margin .6:
    # (1,1) complement [0,4] -> 0; (1,2) complement 0 -> 0; (2,1) complement [.5,0] -> 1 - .6
    w_m = LossWeights(l1=0.0, tv=0.0, out=1.0, div=0.0, out_pairs="matching", l1_on="mask")
    res_m = lmaczs_objective(Stub(), x, text, own, lambda m, e, t: masks, w_m)
    assert res_m.parts["out"] == pytest.approx(0.4 / 3, abs=1e-6)
    stats = finalize_stats(pair_stats(res, text))
    assert stats["mae"] == pytest.approx(0.4 / 4)
    assert stats["corr"] == pytest.approx(r, abs=1e-6)
    # Fid-In: clip 1's top prompt is 2 (s=.8); on M_12 X_1 = X_1 it still wins. Clip 2: top 1,
    # M_21 X_2 = [.5, 0] -> prompt 1 still wins.
    assert stats["fid_in"] == 1.0


def test_energy_and_power_l1_and_centred_diversity_by_hand() -> None:
    # the hand case above: X_1 = [3, 4], X_2 = [1, 0] per frame; s = [[.6, .8], [1, 0]]
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])[:, :, None].repeat(1, 1, 2)
    text = torch.eye(2)
    masks = torch.tensor([
        [[1.0, 0.0], [1.0, 1.0]],
        [[0.5, 0.5], [0.0, 1.0]],
    ])[:, :, :, None].repeat(1, 1, 1, 2)
    own = torch.tensor([0, 0])
    fn = lambda m, e, t: masks  # noqa: E731
    l_sim = (0.6 - 1.0) ** 2 / 4
    # energy: M_11 keeps 3 of 7, M_12 all, M_21 half, M_22 the bin with no energy
    energy = (3 / 7 + 1 + 0.5 + 0) / 4
    power = (9 / 25 + 1 + 0.5 + 0) / 4  # same with squared magnitudes
    for on, kept in (("energy", energy), ("power", power)):
        res = lmaczs_objective(Stub(), x, text, own, fn, LossWeights(l1=0.1, out=0.0, div=0.0, l1_on=on))
        assert res.parts["kept"] == pytest.approx(kept)
        assert res.parts["l1"] == pytest.approx(2.5 / 4)  # still logged: the plain mask mean
        assert float(res.total) == pytest.approx(l_sim + 0.1 * kept, abs=1e-6)
    # centred diversity target: s minus each clip's mean over the prompts -> [-.1, .1, .5, -.5]
    mm, c = [0.5, 1.0, 0.5, 0.5], [-0.1, 0.1, 0.5, -0.5]
    mx, my = sum(mm) / 4, sum(c) / 4
    cov = sum((a - mx) * (b - my) for a, b in zip(mm, c, strict=True))
    r = cov / math.sqrt(sum((a - mx) ** 2 for a in mm) * sum((b - my) ** 2 for b in c))
    assert r == pytest.approx(0.160128, abs=1e-6)
    w = LossWeights(l1=0.0, out=0.0, div=1.0, div_target="centred")
    res = lmaczs_objective(Stub(), x, text, own, fn, w)
    assert res.parts["div"] == pytest.approx(1 - r, abs=1e-6)
    with pytest.raises(ValueError, match="l1_on 'loud'"):
        LossWeights(l1_on="loud")


def test_absent_term_is_the_mask_mean_of_unrelated_pairs_by_hand() -> None:
    # s = [[.6, .8], [1, 0]] as above; batch mean .6. "Unrelated": s_ij <= .6, not the own caption
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])[:, :, None].repeat(1, 1, 2)
    text = torch.eye(2)
    levels = torch.tensor([[1.0, 0.0], [0.25, 0.75]])  # constant masks: their means
    masks = levels[:, :, None, None].expand(2, 2, 2, 2)
    fn = lambda m, e, t: masks  # noqa: E731
    w = LossWeights(l1=0.0, out=0.0, div=0.0, absent=2.0)
    # own captions prompt 1: pair (1,1) (s=.6) is its own; only (2,2) (s=0) is unrelated
    res = lmaczs_objective(Stub(), x, text, torch.tensor([0, 0]), fn, w)
    assert res.parts["absent"] == pytest.approx(0.75)
    l_sim = float(res.parts["sim"])
    assert float(res.total) == pytest.approx(l_sim + 2.0 * 0.75, abs=1e-6)
    # own captions prompt 2: (1,1) is unrelated now, (2,2) is clip 2's own
    res = lmaczs_objective(Stub(), x, text, torch.tensor([1, 1]), fn, w)
    assert res.parts["absent"] == pytest.approx(1.0)
    # weight 0 (the default): the term is neither computed nor logged
    assert "absent" not in lmaczs_objective(Stub(), x, text, torch.tensor([0, 0]), fn,
                                            LossWeights(absent=0.0)).parts


def test_kept_share_is_a_weighted_mask_mean() -> None:
    g = torch.Generator().manual_seed(0)
    mag = torch.rand(2, 5, 7, generator=g)
    for power in (False, True):
        ones = torch.ones(2, 3, 5, 7)
        torch.testing.assert_close(kept_share(mag, ones, power), torch.ones(2, 3))
        torch.testing.assert_close(kept_share(mag, 0 * ones, power), torch.zeros(2, 3))
    # a loud bin costs more under power than under energy weighting
    loud = torch.ones(1, 4, 4)
    loud[0, 0, 0] = 10.0
    keep_loud = torch.zeros(1, 1, 4, 4)
    keep_loud[0, 0, 0, 0] = 1.0
    assert float(kept_share(loud, keep_loud, False)) == pytest.approx(10 / 25)
    assert float(kept_share(loud, keep_loud, True)) == pytest.approx(100 / 115)


def test_only_the_decoder_learns_and_the_model_stays_frozen() -> None:
    model = FakeModel().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    dec = MaskDecoder.for_model(model, "stft", width=16)
    ex = LMACZS(dec)
    opt = torch.optim.AdamW(dec.parameters(), lr=1e-2)
    captions = ["low hum", "high whistle"]
    mag = _clips(model, captions)
    text = model.embed_text(captions)
    res = lmaczs_objective(
        model, mag, text, torch.tensor([0, 1]), lambda m, e, t: ex.pair_masks(model, m, t, e),
        LossWeights(out=0.1, tv=0.1),
    )
    res.total.backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None for p in dec.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in dec.parameters())
    opt.step()
    assert model.training is False
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_few_steps_reduce_l_sim() -> None:
    torch.manual_seed(0)
    model = FakeModel().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    dec = MaskDecoder.for_model(model, "stft", width=16)
    ex = LMACZS(dec)
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    captions = ["low hum", "high whistle", "mid tone beep", "very high whistle"]
    mag = _clips(model, captions)
    text = model.embed_text(captions)
    own = torch.arange(4)

    def loss():
        return lmaczs_objective(
            model, mag, text, own, lambda m, e, t: ex.pair_masks(model, m, t, e),
            LossWeights(l1=0.0, out=0.0, div=0.0),
        )

    first = loss().parts["sim"]
    for _ in range(15):
        res = loss()
        opt.zero_grad()
        res.total.backward()
        opt.step()
    last = loss().parts["sim"]
    assert last < 0.5 * first, (first, last)


class KeepAll:
    """An explainer that keeps everything (mask of ones)."""

    needs_grad = False

    def masks(self, model, magnitude, text, encoded=None):
        return torch.ones_like(magnitude)


@pytest.mark.slow
def test_groundtruth_metrics_plumbing() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small.model")
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.jobs.groundtruth import groundtruth_metrics

    model = small.load_small(ckpt="random").eval()
    m = groundtruth_metrics(model, KeepAll(), SyntheticDataset(3, seed=5, split="test"), batch_size=2)
    assert m["pairs"] == 30 and m["clips"] == 3
    assert m["mae"] == pytest.approx(0.0, abs=1e-6)  # all-ones masks keep every similarity
    assert m["auc"] == 0.5  # and cannot tell present from absent prompts
    assert 0.0 <= m["pointing"] <= 1.0 and m["pointing_events"] >= 3


@pytest.mark.slow
def test_groundtruth_pointing_split_by_scene_size() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small.model")
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.jobs.groundtruth import groundtruth_metrics
    from lmaczs_cli.metrics import energy_pointing_game

    model = small.load_small(ckpt="random").eval()
    scenes = SyntheticDataset(8, seed=5, split="test")
    m = groundtruth_metrics(model, KeepAll(), scenes, batch_size=4)
    # all-ones masks point where the clip is loudest: tally that by hand for every event
    tally = {1: [0, 0], 2: [0, 0]}
    for i in range(len(scenes)):
        sc = scenes.scene(i)
        mag = model.spectrogram(torch.from_numpy(sc.wave)[None])[0]
        for gt in sc.masks.values():
            if not gt.any():
                continue  # the metric skips events without a ground-truth region too
            g = torch.from_numpy(gt)[None]
            t = tally[min(len(sc.masks), 2)]
            t[0] += bool(energy_pointing_game(torch.ones_like(mag), mag, g)[0])
            t[1] += 1
    assert tally[1][1] > 0 and tally[2][1] > 0  # both kinds of scene are in the sample
    assert m["pointing_events_multi"] == tally[2][1]
    assert m["pointing_single_event"] == pytest.approx(tally[1][0] / tally[1][1])
    assert m["pointing_multi_event"] == pytest.approx(tally[2][0] / tally[2][1])
    n1, n2 = tally[1][1], tally[2][1]
    assert m["pointing"] == pytest.approx(
        (m["pointing_single_event"] * n1 + m["pointing_multi_event"] * n2) / (n1 + n2)
    )
    # all-ones masks are exactly faithful: every hit is also a hit within any tolerance
    assert m["pointing_within_0.05"] == m["pointing_within_0.1"] == m["pointing"]


DIM = 1e-3


class Dimmed:
    """Keeps every bin at -60 dB: points where the clip is loudest, but s~ moves away from s."""

    needs_grad = False

    def masks(self, model, magnitude, text, encoded=None):
        return torch.full_like(magnitude, DIM)


@pytest.mark.slow
def test_groundtruth_pointing_within_counts_only_faithful_hits() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small.model")
    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.jobs.groundtruth import groundtruth_metrics
    from lmaczs_cli.metrics import energy_pointing_game

    model = small.load_small().eval()  # the trained model: dimming lowers its similarities
    scenes = SyntheticDataset(6, seed=5, split="test")
    m = groundtruth_metrics(model, Dimmed(), scenes, batch_size=4)
    classes = list(scenes.classes)
    text = model.embed_text(world.canonical_prompts(classes)).float()
    hits, within, errs = 0, {0.05: 0, 0.1: 0}, []
    for i in range(len(scenes)):
        sc = scenes.scene(i)
        mag = model.spectrogram(torch.from_numpy(sc.wave)[None])[0]
        with torch.no_grad():
            s = model.encode(mag).embedding.float() @ text.T
            st = model.encode(DIM * mag).embedding.float() @ text.T
        for c, gt in sc.masks.items():
            if not gt.any():
                continue
            j = classes.index(c)
            hit = bool(energy_pointing_game(torch.ones_like(mag), mag, torch.from_numpy(gt)[None])[0])
            err = float((s[0, j] - st[0, j]).abs())
            errs.append(err)
            hits += hit
            for t in within:
                within[t] += hit and err <= t
    n = len(errs)
    assert m["pointing"] == pytest.approx(hits / n)
    assert m["pointing_within_0.05"] == pytest.approx(within[0.05] / n)
    assert m["pointing_within_0.1"] == pytest.approx(within[0.1] / n)
    assert m["pointing_within_0.05"] < m["pointing"]  # some hits are not faithful: the tolerance bites
