"""Behaviour of lmaczs_cli.metrics against hand-computed values, Quantus, torchmetrics and closed forms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from lmaczs_cli import metrics as M

# -- faithfulness --------------------------------------------------------------------------

# (P, P_in, P_out, c, expected AI, AD, AG, FF, FidIn), every value worked out by hand.
FAITH_CASES = [
    # masked-in drops the class: AD = 100 * 0.3 / 0.6
    ([0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.5, 0.3], 0, 0.0, 50.0, 0.0, 0.4, 0.0),
    # masked-in raises it: AG = 100 * 0.3 / 0.5
    ([0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25], 1, 100.0, 0.0, 60.0, 0.25, 1.0),
    # P[c] = 1, unchanged: no increase (strict), AG's denominator is 0 -> AG = 0
    ([0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], 1, 0.0, 0.0, 0.0, 0.5, 1.0),
    # P[c] = 1, dropping: AD = 20, AG = 0
    ([0.0, 1.0, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], 1, 0.0, 20.0, 0.0, 0.6, 1.0),
    # all-zero mask: the model sees silence -> uniform P_in; removing nothing -> P_out = P.
    # argmax of a tie is the first index (0 == c) -> FidIn 1
    ([0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.7, 0.2, 0.1], 0, 0.0, 100 * (0.7 - 1 / 3) / 0.7, 0.0,
     0.0, 1.0),
    # P[c] = 0 (explaining a non-predicted class): AD's denominator is 0 -> AD = 0
    ([1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.9, 0.1, 0.0], 1, 100.0, 0.0, 50.0, -0.1, 0.0),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_faithfulness_hand_values(dtype):
    p, p_in, p_out, c = (torch.tensor([case[i] for case in FAITH_CASES], dtype=dtype) for i in range(4))
    out = M.faithfulness(p, p_in, p_out, c.long())
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    for j, key in enumerate(["AI", "AD", "AG", "FF", "FidIn"]):
        expected = torch.tensor([case[4 + j] for case in FAITH_CASES], dtype=torch.float64)
        assert out[key].shape == (len(FAITH_CASES),)
        assert out[key].dtype == dtype
        assert torch.isfinite(out[key]).all(), key
        torch.testing.assert_close(out[key].double(), expected, atol=tol, rtol=0, msg=key)


def test_faithfulness_no_nan_on_degenerate_probabilities_and_bad_shapes():
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    p_in = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    out = M.faithfulness(p, p_in, p, torch.tensor([0, 0, 0]))
    for v in out.values():
        assert torch.isfinite(v).all()
    assert out["AD"].tolist() == [100.0, 0.0, 0.0]
    assert out["AG"].tolist() == [0.0, 100.0, 0.0]
    with pytest.raises(ValueError):
        M.faithfulness(p, p_in[:2], p, torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError):
        M.faithfulness(p, p_in, p, torch.tensor([0, 0]))


# -- SPS / COMP against Quantus ------------------------------------------------------------

MAP_SHAPES = [(5, 7), (16, 16), (3, 40), (64, 10), (2, 2), (8, 33), (32, 5), (12, 12), (7, 3), (20, 30)]


def _random_map(seed: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.random(shape)
    if seed % 3 == 1:  # sparse, tiny map (Quantus' max-normalisation then matters for its +1e-7)
        m = m * (rng.random(shape) < 0.15)
        m.flat[0] = 0.7  # never all zero
        m = m * 1e-6
    if seed % 3 == 2:  # signed, unnormalised (a raw saliency map): abs is taken
        m = (m - 0.5) * 40.0
    return m


def _quantus_scores(maps: list[np.ndarray]) -> tuple[list[float], list[float]]:
    quantus = pytest.importorskip("quantus")
    sps, comp = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp_metric = quantus.Sparseness(disable_warnings=True)
        cx_metric = quantus.Complexity(disable_warnings=True)
        for m in maps:
            a = m[None, None].astype(np.float64)  # batch of one, channel first
            x = np.ones_like(a)
            y = np.zeros(1, dtype=int)
            sps.append(sp_metric(model=None, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True)[0])
            comp.append(cx_metric(model=None, x_batch=x, y_batch=y, a_batch=a.copy(), channel_first=True)[0])
    return sps, comp


def test_sparseness_and_complexity_match_quantus():
    maps = [_random_map(seed, shape) for seed, shape in enumerate(MAP_SHAPES)]
    q_sps, q_comp = _quantus_scores(maps)
    for m, qs, qc in zip(maps, q_sps, q_comp, strict=True):
        t = torch.from_numpy(m)[None]
        np.testing.assert_allclose(M.sparseness(t).item(), qs, rtol=1e-6)
        np.testing.assert_allclose(M.complexity(t).item(), qc, rtol=1e-6)
        # float32 masks (what the explainers produce) give the same numbers
        np.testing.assert_allclose(M.sparseness(t.float()).item(), qs, rtol=1e-5)
    # batched: per-sample normalisation, so each row equals Quantus on that map alone
    same = [_random_map(100 + s, (9, 11)) for s in range(3)]
    same[1] = same[1] * 50.0
    q_sps, q_comp = _quantus_scores(same)
    batch = torch.from_numpy(np.stack(same))
    np.testing.assert_allclose(M.sparseness(batch).numpy(), q_sps, rtol=1e-6)
    np.testing.assert_allclose(M.complexity(batch).numpy(), q_comp, rtol=1e-6)


def test_sparseness_complexity_edge_cases():
    n = 6 * 10
    zero = torch.zeros(1, 6, 10)
    const = torch.full((1, 6, 10), 0.3)
    onehot = torch.zeros(1, 6, 10)
    onehot[0, 2, 3] = 1.0
    assert M.sparseness(zero).item() == 0.0
    assert abs(M.sparseness(const).item()) < 1e-12
    assert M.complexity(zero).item() == pytest.approx(math.log(n), rel=1e-9)
    assert M.complexity(zero).item() == pytest.approx(M.complexity(const).item(), rel=1e-12)
    assert M.sparseness(onehot).item() == pytest.approx(1 - 1 / n, abs=1e-5)
    assert M.complexity(onehot).item() == pytest.approx(0.0, abs=1e-9)
    # sparser map -> higher SPS, lower COMP
    half = torch.zeros(1, 6, 10)
    half[0, :3] = 1.0
    assert M.sparseness(onehot) > M.sparseness(half) > M.sparseness(const)
    assert M.complexity(onehot) < M.complexity(half) < M.complexity(const)


def test_mask_mean():
    m = torch.tensor([[[0.0, 1.0], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.2]]])
    torch.testing.assert_close(M.mask_mean(m), torch.tensor([0.5, 0.05]))


# -- SSIM ----------------------------------------------------------------------------------


def test_ssim_identical_noisy_and_against_torchmetrics():
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 24, 40, generator=g)
    torch.testing.assert_close(M.ssim(a, a.clone()), torch.ones(3, dtype=torch.float64))
    # the per-sample [0, 1] normalisation makes SSIM blind to affine rescaling
    torch.testing.assert_close(M.ssim(a, 3.0 * a + 2.0), torch.ones(3, dtype=torch.float64))
    noisy = a + 0.3 * torch.rand(3, 24, 40, generator=g)
    s = M.ssim(a, noisy)
    assert s.shape == (3,) and (s < 0.99).all() and (s > 0).all()
    ref = tm_ssim(M.normalise_01(a.double())[:, None], M.normalise_01(noisy.double())[:, None],
                  data_range=1.0, reduction="none")
    torch.testing.assert_close(s, ref)
    # more noise, lower SSIM; tiny maps still work (window shrinks)
    assert (M.ssim(a, a + 1.0 * torch.rand(3, 24, 40, generator=g)) < s).all()
    small = torch.rand(2, 4, 30, generator=g)
    torch.testing.assert_close(M.ssim(small, small), torch.ones(2, dtype=torch.float64))
    # computed a few maps at a time: a batch across chunk borders gives each map's own SSIM
    n = 2 * M.SSIM_CHUNK + 1
    x, y = torch.rand(n, 24, 40, generator=g), torch.rand(n, 24, 40, generator=g)
    one_by_one = torch.cat([M.ssim(x[i : i + 1], y[i : i + 1]) for i in range(n)])
    torch.testing.assert_close(M.ssim(x, y), one_by_one)


# -- Fréchet distance ----------------------------------------------------------------------


def _exact_samples(rng, n: int, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """n samples whose sample mean is exactly mu and sample covariance (ddof=1) exactly cov."""
    z = rng.normal(size=(n, mu.size))
    z -= z.mean(0)
    white = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return mu + white @ np.linalg.cholesky(cov).T


def test_frechet_distance_closed_form_gaussians():
    rng = np.random.default_rng(0)
    d = 8
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.2, 2.0, d), rng.uniform(0.2, 2.0, d)
    x = _exact_samples(rng, 500, mu1, np.diag(s1**2))
    y = _exact_samples(rng, 300, mu2, np.diag(s2**2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert M.frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)
    assert M.frechet_distance(y, x) == pytest.approx(expected, rel=1e-9)
    # full covariances: Tr (S1 S2)^(1/2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    w, v = np.linalg.eigh(c1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    tr = np.sum(np.sqrt(np.linalg.eigvalsh(r1 @ c2 @ r1)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * tr
    x, y = _exact_samples(rng, 400, mu1, c1), _exact_samples(rng, 400, mu2, c2)
    assert M.frechet_distance(x.astype(np.float32), y) == pytest.approx(expected, rel=1e-5)
    assert M.frechet_distance(x, y) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_identical_sets_and_degenerate_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16))
    assert M.frechet_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-8)
    # fewer samples than dimensions: singular covariances, the eps fix keeps it finite and ~0
    few = rng.normal(size=(10, 32))
    fd = M.frechet_distance(few, few.copy())
    assert math.isfinite(fd) and 0.0 <= fd < 1e-4
    assert M.frechet_distance(rng.normal(size=(50, 1)) + 3.0, rng.normal(size=(50, 1))) > 5.0
    with pytest.raises(ValueError):
        M.frechet_distance(x, x[:, :3])
    with pytest.raises(ValueError):
        M.frechet_distance(x[:1], x)


# -- bootstrap / summary -------------------------------------------------------------------


def test_bootstrap_ci_contains_mean_shrinks_and_is_seeded():
    rng = np.random.default_rng(2)
    small, big = rng.normal(1.0, 2.0, 25), rng.normal(1.0, 2.0, 1600)
    m_s, lo_s, hi_s = M.bootstrap_ci(small)
    m_b, lo_b, hi_b = M.bootstrap_ci(big)
    assert m_s == pytest.approx(small.mean()) and lo_s < m_s < hi_s
    assert m_b == pytest.approx(big.mean()) and lo_b < m_b < hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 4  # ~1/sqrt(n): 8x narrower in expectation
    # width close to the normal-theory 2 * 1.96 * sd / sqrt(n)
    assert hi_b - lo_b == pytest.approx(2 * 1.96 * big.std(ddof=1) / 40, rel=0.15)
    assert M.bootstrap_ci(small, seed=3) == M.bootstrap_ci(small, seed=3)
    assert M.bootstrap_ci(small, seed=3) != M.bootstrap_ci(small, seed=4)
    assert M.bootstrap_ci(np.full(7, 2.5)) == (2.5, 2.5, 2.5)
    assert M.bootstrap_ci(np.array([4.0])) == (4.0, 4.0, 4.0)
    assert all(math.isnan(v) for v in M.bootstrap_ci(np.array([])))


def test_summarise_reproduces_group_means_from_rows():
    rows = [
        {"method": "lmaczs", "set": "esc50", "AD": 10.0, "FidIn": 1.0},
        {"method": "lmaczs", "set": "esc50", "AD": 30.0, "FidIn": 0.0},
        {"method": "gradcam", "set": "esc50", "AD": 50.0, "FidIn": 1.0},
        {"method": "lmaczs", "set": "esc50", "AD": 20.0, "FidIn": 1.0},
        {"method": "gradcam", "set": "esc50", "AD": 70.0, "FidIn": ""},  # missing cell
    ]
    out = M.summarise(rows, ["AD", "FidIn"], ["method", "set"])
    by = {(r["method"], r["metric"]): r for r in out}
    assert [(r["method"], r["metric"]) for r in out] == [
        ("lmaczs", "AD"), ("lmaczs", "FidIn"), ("gradcam", "AD"), ("gradcam", "FidIn")]
    assert by["lmaczs", "AD"]["mean"] == pytest.approx(20.0) and by["lmaczs", "AD"]["n"] == 3
    assert by["lmaczs", "FidIn"]["mean"] == pytest.approx(2 / 3)
    assert by["gradcam", "AD"]["mean"] == pytest.approx(60.0) and by["gradcam", "AD"]["n"] == 2
    assert by["gradcam", "FidIn"]["mean"] == 1.0 and by["gradcam", "FidIn"]["n"] == 1
    assert all(r["set"] == "esc50" for r in out)
    for r in out:
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    # rows read back from a CSV (all strings) give the same summary
    as_text = [{k: str(v) for k, v in row.items()} for row in rows]
    assert M.summarise(as_text, ["AD", "FidIn"], ["method", "set"]) == out
    # and the CI is exactly bootstrap_ci of the group's values
    assert (by["lmaczs", "AD"]["mean"], by["lmaczs", "AD"]["ci_low"], by["lmaczs", "AD"]["ci_high"]) \
        == M.bootstrap_ci(np.array([10.0, 30.0, 20.0]))


# -- ground-truth localisation -------------------------------------------------------------


def test_energy_pointing_game():
    gt = torch.zeros(4, 2, 3, dtype=torch.bool)
    gt[:, 1, 2] = True
    mask = torch.zeros(4, 2, 3)
    mag = torch.ones(4, 2, 3)
    mask[0, 1, 2] = 1.0  # peak inside GT -> hit
    mask[1, 0, 0] = 1.0  # peak outside -> miss
    # 2: mask peaks outside, but that bin is silent; mask * magnitude peaks inside -> hit
    mask[2, 0, 1], mask[2, 1, 2] = 1.0, 0.4
    mag[2, 0, 1] = 0.1
    # 3: all-zero mask points nowhere -> miss (even though flat index 0 ... is not in GT anyway)
    hits = M.energy_pointing_game(mask, mag, gt)
    assert hits.dtype == torch.bool
    assert hits.tolist() == [True, False, True, False]
    # without energy, sample 2 points at the mask's own peak -> miss
    assert M.energy_pointing_game(mask, None, gt).tolist() == [True, False, False, False]
    gt_all = torch.ones(1, 2, 3, dtype=torch.bool)
    assert M.energy_pointing_game(torch.zeros(1, 2, 3), None, gt_all).tolist() == [False]


def test_mask_precision_recall():
    gt = torch.tensor([[[1, 1, 0, 0]]], dtype=torch.bool)
    mask = torch.tensor([[[0.9, 0.2, 0.6, 0.1]]])  # selects bins 0 and 2
    pr = M.mask_precision_recall(mask, gt)
    assert pr["precision"].item() == pytest.approx(0.5)
    assert pr["recall"].item() == pytest.approx(0.5)
    assert pr["f1"].item() == pytest.approx(0.5)
    energy = torch.tensor([[[3.0, 1.0, 1.0, 5.0]]])
    pr = M.mask_precision_recall(mask, gt, energy=energy)
    assert pr["precision"].item() == pytest.approx(3 / 4)  # 3 of the 4 kept energy units are target
    assert pr["recall"].item() == pytest.approx(3 / 4)  # 3 of the 4 target energy units are kept
    soft = M.mask_precision_recall(mask, gt, threshold=None)
    assert soft["precision"].item() == pytest.approx(1.1 / 1.8)
    assert soft["recall"].item() == pytest.approx(1.1 / 2)
    empty = M.mask_precision_recall(torch.zeros(1, 1, 4), gt)
    assert [empty[k].item() for k in ("precision", "recall", "f1")] == [0.0, 0.0, 0.0]


def test_auc_mann_whitney_with_ties():
    assert M.auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert M.auc([1.0, 2.0], [3.0, 4.0]) == 0.0
    assert M.auc([1.0, 1.0], [1.0]) == 0.5
    # pairs: (1,2)=0 (1,0)=1 (2,2)=.5 (2,0)=1 (3,2)=1 (3,0)=1 -> 4.5 / 6
    assert M.auc(torch.tensor([1.0, 2.0, 3.0]), np.array([2.0, 0.0])) == pytest.approx(0.75)
    rng = np.random.default_rng(5)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    brute = np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))
    assert M.auc(pos, neg) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(ValueError):
        M.auc([], [1.0])


def test_rank_correlation_matches_scipy_with_ties_and_is_nan_for_constant_maps():
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(3)
    a = torch.rand(4, 8, 6, generator=g)
    b = torch.rand(4, 8, 6, generator=g)
    a[0, :4] = 0.0                       # ties in one map
    b[1] = torch.relu(b[1] - 0.6)        # many exact zeros, as GradCAM's maps have
    b[2] = 0.5 * a[2] ** 3 + 1.0         # a monotone transform: rank correlation 1
    b[3] = 7.0                           # constant: no ranking
    r = M.rank_correlation(a, b)
    for j in range(3):
        assert abs(float(r[j]) - spearmanr(a[j].flatten(), b[j].flatten())[0]) < 1e-9
    assert abs(float(r[2]) - 1.0) < 1e-9 and torch.isnan(r[3])
    assert M.rank_correlation(a[:1], b[:1]).shape == (1,)
    bad = a.clone()
    bad[0, 0, 0] = float("nan")  # a NaN map has no ranking
    assert torch.isnan(M.rank_correlation(bad, b)[0])


def test_rank_correlation_of_full_size_sparse_maps_matches_scipy():
    """A small-model map has 257 x 501 bins; sparse ones tie most of them (torchmetrics' ranking
    summed such ties in int32 and overflowed)."""
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 257, 501, generator=g)
    b = a + 0.5 * torch.rand(2, 257, 501, generator=g)
    a[0].view(-1)[:18000] = 1.0                       # 18k bins tied at the top
    a[1][a[1] < 0.8], b[1][b[1] < 0.95] = 0.0, 0.0    # 80 % / 95 % zeros
    r = M.rank_correlation(a, b)
    for j in range(2):
        assert abs(float(r[j]) - spearmanr(a[j].flatten(), b[j].flatten())[0]) < 1e-9
