"""Ground-truth oracle masks and the faithfulness/pointing ceiling they give."""

from __future__ import annotations

import pytest
import torch

from lmaczs_cli.jobs.groundtruth import (
    ORACLE_LEVELS,
    ORACLE_OTHERS,
    ORACLE_TIME_SHARES,
    oracle_ceiling,
    oracle_masks,
)
from lmaczs_cli.metrics import energy_pointing_game
from tests.fake_model import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _event_grid() -> tuple[torch.Tensor, torch.Tensor]:
    gt = torch.zeros(6, 10, dtype=torch.bool)
    gt[1:3, 2:8] = True  # the event: 6 frames
    other = torch.zeros_like(gt)
    other[4:6, 0:5] = True
    return gt, gt | other


def test_oracle_family_is_built_from_the_ground_truth() -> None:
    gt, union = _event_grid()
    masks = oracle_masks(gt, union)
    n = len(ORACLE_TIME_SHARES) * len(ORACLE_LEVELS) * len(ORACLE_OTHERS) * 2
    assert masks.shape == (n, 6, 10)
    assert torch.equal(masks[0], gt.float())  # full event, level 1, no others, no background
    assert masks.min() >= 0 and masks.max() <= 1
    # level 1, others 0.5, background kept: event 1, other event 0.5, background 1
    m = masks[len(ORACLE_OTHERS) * 2 - 1]
    assert m[1, 2] == 1 and m[4, 0] == 0.5 and m[0, 0] == 1
    # the 0.1 time share keeps the event's first frame only (6 frames -> at least one)
    last_share = masks[-len(ORACLE_LEVELS) * len(ORACLE_OTHERS) * 2]
    assert last_share[1:3].sum(0).nonzero()[:, 0].tolist() == [2]


def test_whole_event_masks_keep_the_event_at_full_level() -> None:
    from lmaczs_cli.jobs.groundtruth import WHOLE_EVENT

    gt, union = _event_grid()
    masks = oracle_masks(gt, union)
    whole = masks[WHOLE_EVENT]
    assert len(whole) == len(ORACLE_OTHERS) * 2
    assert bool((whole[:, gt] == 1).all())  # every bin of the event, at level 1
    assert not bool((masks[WHOLE_EVENT.stop :][:, gt] == 1).all(1).any())  # none of the rest does


def test_masks_without_other_events_point_at_the_event() -> None:
    gt, union = _event_grid()
    mag = torch.rand(6, 10) + 0.1
    mag[4:6, 0:5] = 50.0  # the other event is far louder
    masks = oracle_masks(gt, union)
    hit = energy_pointing_game(masks, mag.expand_as(masks), gt.expand_as(masks))
    no_others = (masks * ~gt).flatten(1).sum(1) == 0  # nothing kept outside the event
    assert bool(hit[no_others].all())
    assert not bool(hit[~no_others].all())  # a louder event kept at 0.5 wins the argmax


@pytest.mark.slow
def test_ceiling_on_a_few_scenes() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small")
    from lmaczs_cli.data.synthetic import SyntheticDataset

    model = small.load_small().eval()
    out = oracle_ceiling(model, SyntheticDataset(2, seed=5, split="test"), tolerances=(0.0, 0.05, 10.0))
    assert out["events"] >= 2
    assert out["pointing_at_0"] <= out["pointing_at_0.05"] <= out["pointing_at_10"]
    assert out["pointing_at_10"] == 1.0  # the plain ground-truth mask always points right
    # keeping the whole event is a subset of the family: never above the full ceiling
    for t in ("0", "0.05", "10"):
        assert out[f"whole_event_pointing_at_{t}"] <= out[f"pointing_at_{t}"]
    assert out["whole_event_pointing_at_10"] == 1.0  # the ground-truth mask itself is a whole-event mask
    multi = out["multi_event"]
    assert 0 <= multi["events"] <= out["events"]
    lo, hi = out["empty_mask_sim_range"]
    assert -1 <= lo <= hi <= 1 and out["empty_mask_abs_err_absent"] >= 0
    # the event's own mask, by hand: s~ of gt * X against s, averaged over the present events
    from lmaczs_cli.data import synthetic as world

    scenes = SyntheticDataset(2, seed=5, split="test")
    text = model.embed_text(world.canonical_prompts(list(scenes.classes))).float()
    diffs = []
    with torch.no_grad():
        for i in range(len(scenes)):
            sc = scenes.scene(i)
            mag = model.spectrogram(torch.from_numpy(sc.wave)[None])[0]
            s = model.encode(mag).embedding.float()[0] @ text.T
            for j, c in enumerate(scenes.classes):
                if c in sc.classes and sc.masks[c].any():
                    g = torch.from_numpy(sc.masks[c])[None]
                    diffs.append(float(model.encode(g * mag).embedding.float()[0] @ text[j] - s[j]))
    assert out["event_mask_minus_s_present"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-5)
    assert out["event_mask_abs_err_present"] == pytest.approx(sum(map(abs, diffs)) / len(diffs), abs=1e-5)


def test_ceiling_refuses_a_model_on_another_grid() -> None:
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.errors import UsageError
    from tests.fake_model import FakeModel

    with pytest.raises(UsageError, match="synthetic world's grid"):
        oracle_ceiling(FakeModel(), SyntheticDataset(1, seed=5, split="test"))


class SoftEnergy:
    """Mask = the clip's magnitude over its maximum, scaled by a prompt-dependent level in (0, 1)."""

    needs_grad = False

    @staticmethod
    def level(text: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(8 * text[:, 0])

    def masks(self, model, magnitude, text, encoded=None):
        peak = magnitude.amax((1, 2), keepdim=True).clamp_min(1e-12)
        return magnitude / peak * self.level(text)[:, None, None]


@pytest.mark.slow
def test_groundtruth_selectivity_keys_match_a_hand_tally() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small")
    import numpy as np

    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.jobs.groundtruth import groundtruth_metrics

    model = small.load_small().eval()  # the trained model: it hears some quiet events and not others
    scenes = SyntheticDataset(12, seed=5, split="test")
    m = groundtruth_metrics(model, SoftEnergy(), scenes, batch_size=4)
    classes = list(scenes.classes)
    text = model.embed_text(world.canonical_prompts(classes))
    level = SoftEnergy.level(text).double().numpy()
    prec, rec, loud, quiet, means_p, means_a = [], [], [0, 0], [0, 0], [], []
    quiet_rec, quiet_heard_rec = [], []
    for i in range(len(scenes)):
        sc = scenes.scene(i)
        mag = model.spectrogram(torch.from_numpy(sc.wave)[None])[0]
        x = mag[0].double().numpy()
        with torch.no_grad():
            sims = (model.encode(mag).embedding @ text.T)[0].tolist()
        loudest_absent = max(v for v, c in zip(sims, classes, strict=True) if c not in sc.classes)
        base = x / x.max()
        for j, c in enumerate(classes):
            mask = base * level[j]
            (means_p if c in sc.classes else means_a).append(mask.mean())
            if c not in sc.classes or not sc.masks[c].any():
                continue
            g = sc.masks[c]
            prec.append((mask * x * g).sum() / (mask * x).sum())
            rec.append((mask * x * g).sum() / (x * g).sum())
            if (x**2 * g).sum() / (x**2).sum() < 0.1:  # a quiet event: < 10 % of the clip's power
                quiet_rec.append(rec[-1])
                if sims[j] > loudest_absent:  # heard: its prompt beats every absent one
                    quiet_heard_rec.append(rec[-1])
            peak = np.unravel_index(np.argmax(x), x.shape)  # the clip's own loudest bin
            tally = loud if g[peak] else quiet
            tally[0] += bool(g[np.unravel_index(np.argmax(mask * x), x.shape)])
            tally[1] += 1
    assert m["precision"] == pytest.approx(np.mean(prec), rel=1e-5)
    assert m["recall"] == pytest.approx(np.mean(rec), rel=1e-5)
    assert m["pointing_events_not_loudest"] == quiet[1] and loud[1] + quiet[1] == m["pointing_events"]
    assert m["quiet_events"] == len(quiet_rec)
    assert m["quiet_recall"] == pytest.approx(np.mean(quiet_rec), rel=1e-5)
    assert 0 < len(quiet_heard_rec) < len(quiet_rec)  # the split is not trivial on this sample
    assert m["quiet_events_heard"] == len(quiet_heard_rec)
    assert m["quiet_recall_heard"] == pytest.approx(np.mean(quiet_heard_rec), rel=1e-5)
    assert loud[1] > 0 and quiet[1] > 0  # both kinds of event are in the sample
    # a mask that follows the clip's energy points at its loudest bin: all loud events, no quiet one
    assert m["pointing_loudest"] == loud[0] / loud[1] == 1.0
    assert m["pointing_not_loudest"] == quiet[0] / quiet[1] == 0.0
    ratio = np.mean(means_a) / np.mean(means_p)
    assert m["mask_mean_ratio_absent_present"] == pytest.approx(ratio, rel=1e-5)
    assert m["mask_mean_ratio_absent_present"] != pytest.approx(1.0, abs=1e-3)  # the levels differ


class KeepLoud:
    """Keeps the bins above the clip's median magnitude."""

    needs_grad = False

    def masks(self, model, magnitude, text, encoded=None):
        med = magnitude.flatten(1).median(1).values[:, None, None]
        return (magnitude > med).float()


@pytest.mark.slow
def test_demo_scene_metrics_score_the_bundled_example() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small")
    import numpy as np

    from lmaczs_cli.audio import read_audio
    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.explainers.bundled import ASSETS
    from lmaczs_cli.jobs.groundtruth import DEMO_SCENE, demo_scene_metrics

    model = small.load_small(ckpt="random").eval()
    out = demo_scene_metrics(model, KeepLoud())
    scene = world.generate_scene(DEMO_SCENE["seed"], DEMO_SCENE["index"])
    assert set(out) == {"knock", "bell"} == set(scene.classes)
    wave = read_audio(ASSETS / "examples" / "scene.wav")[0]
    x = model.spectrogram(torch.from_numpy(wave)[None])[0][0].numpy()
    keep = x > np.median(x)
    no_event = ~(scene.masks["knock"] | scene.masks["bell"])
    for c, r in out.items():
        assert r["mask_mean_no_event"] == pytest.approx(keep[no_event].mean(), rel=1e-6)
        assert r["mask_mean_event"] == pytest.approx(keep[scene.masks[c]].mean(), rel=1e-6)
    # an empty mask for the bell would score 0 there; keeping all would score 1
    assert 0 < out["bell"]["mask_mean_no_event"] < 1


@pytest.mark.slow
def test_faithfulness_error_is_split_into_present_and_absent_pairs() -> None:
    small = pytest.importorskip("lmaczs_cli.models.small")
    import numpy as np

    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.jobs.groundtruth import groundtruth_metrics

    model = small.load_small(ckpt="random").eval()
    scenes = SyntheticDataset(5, seed=5, split="test")
    ones = groundtruth_metrics(model, create_explainer("all-ones", model), scenes, batch_size=4)
    assert ones["mae_present"] == pytest.approx(0, abs=1e-5)
    assert ones["mae_absent"] == pytest.approx(0, abs=1e-5)
    empty = groundtruth_metrics(model, create_explainer("empty", model), scenes, batch_size=4)
    classes = list(scenes.classes)
    text = model.embed_text(world.canonical_prompts(classes)).double()
    err = {True: [], False: []}
    with torch.no_grad():
        for i in range(len(scenes)):
            sc = scenes.scene(i)
            mag = model.spectrogram(torch.from_numpy(sc.wave)[None])[0]
            s = model.encode(mag).embedding.double() @ text.T
            s0 = model.encode(mag * 0).embedding.double() @ text.T  # an empty mask: silence
            for j, c in enumerate(classes):
                err[c in sc.classes].append(abs(float(s[0, j] - s0[0, j])))
    assert empty["mae_present"] == pytest.approx(np.mean(err[True]), rel=1e-4)
    assert empty["mae_absent"] == pytest.approx(np.mean(err[False]), rel=1e-4)
    assert empty["mae_present"] != pytest.approx(empty["mae_absent"], rel=1e-3)
