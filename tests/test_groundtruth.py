"""Ground-truth oracle masks and the faithfulness/pointing ceiling they give."""

from __future__ import annotations

import pytest
import torch

from lmaczs_cli.groundtruth import (
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
    from lmaczs_cli.groundtruth import WHOLE_EVENT

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


def test_ceiling_refuses_a_model_on_another_grid() -> None:
    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.errors import UsageError
    from tests.fake_model import FakeModel

    with pytest.raises(UsageError, match="synthetic world's grid"):
        oracle_ceiling(FakeModel(), SyntheticDataset(1, seed=5, split="test"))
