"""Evaluation metrics for LMAC-ZS explanations (docs/method.md §4, §7, §8), pure torch/numpy.

Everything here is per sample (a value per row of a batch) so that every number in a
summary can be recomputed from per-sample rows; :func:`summarise` does that aggregation.

Faithfulness (§4), from probability vectors the caller computed:

- ``P``     original class probabilities, ``P_in`` those of ``InputTf(M * X)``,
  ``P_out`` those of ``InputTf((1 - M) * X)``; ``c`` the explained class.

Conventions chosen where the paper leaves a value undefined (no NaN is ever produced):

- AD with ``P[c] = 0``: 0 (nothing can be dropped from zero).
- AG with ``P[c] = 1``: 0 (no gain is possible above one).
- FidIn: ``argmax P_in`` takes the first index among ties (``torch.argmax``).
- SPS/COMP of an all-zero mask (Quantus refuses such maps): treated as a constant map,
  i.e. the uniform distribution: SPS = 0 (what Quantus' formula gives for zeros, too) and
  COMP = the entropy of the uniform distribution, ``~log(n)``.

SpeechBrain's L-MAC recipe (``recipes/ESC50/interpret/interpreter_brain.py`` and
``train_lmac.py``, speechbrain@9c826ef) computes, with ``pc`` = ``P[c]``, ``oc`` = ``P_in[c]``,
``c = argmax P`` and ``eps = 1e-10``::

    AI  = (pc < oc).float() * 100
    AD  = (F.relu(pc - oc) / (pc + eps)) * 100      # after F.softmax of BOTH inputs, which
                                                     # train_lmac.py already passes as softmax
                                                     # probabilities: a double softmax
    AG  = (F.relu(oc - pc) / (1 - pc + eps)) * 100
    FF  = P[c] - P_out[c]                           # "compute_faithfulness"
    FidIn = topk(P_in, k=1) == argmax(P)            # "compute_fidelity"
    SPS/COMP = quantus.Sparseness/Complexity(return_aggregate=True, abs=True)(...) per batch,
               skipping a batch whose maps sum to zero ("all zeros saliency map")

This module follows docs/method.md instead: AD is computed on the probabilities once (no second
softmax), the ``eps`` in the denominators is replaced by the explicit edge cases above, and
SPS/COMP are per sample (Quantus' default ``normalise_by_max`` normalises over *all* axes of
the array it is given, batch included, so in a batched Quantus call one sample's score depends
slightly on its batch-mates; here each sample is normalised by its own maximum, which equals
Quantus called on a batch of one).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

__all__ = [
    "auc",
    "bootstrap_ci",
    "complexity",
    "energy_pointing_game",
    "faithfulness",
    "frechet_distance",
    "mask_mean",
    "mask_precision_recall",
    "normalise_01",
    "sparseness",
    "ssim",
    "summarise",
]

# -- §4 faithfulness -----------------------------------------------------------------------


def faithfulness(
    p: torch.Tensor, p_in: torch.Tensor, p_out: torch.Tensor, c: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-sample AI, AD, AG, FF, FidIn (docs/method.md §4) from probability vectors.

    ``p``, ``p_in``, ``p_out``: [B, C] probabilities of the original, masked-in and masked-out
    inputs; ``c``: [B] class index explained (normally ``argmax p``). Returns a dict of [B]
    float tensors (dtype of ``p``):

    - ``AI``    = 100 * [P_in[c] > P[c]]
    - ``AD``    = 100 * relu(P[c] - P_in[c]) / P[c]         (0 where P[c] = 0)
    - ``AG``    = 100 * relu(P_in[c] - P[c]) / (1 - P[c])   (0 where P[c] = 1)
    - ``FF``    = P[c] - P_out[c]
    - ``FidIn`` = [argmax P_in == c] as 0./1.
    """
    if p.ndim != 2 or p_in.shape != p.shape or p_out.shape != p.shape:
        raise ValueError(f"p, p_in, p_out must all be [B, C]; got {tuple(p.shape)}, "
                         f"{tuple(p_in.shape)}, {tuple(p_out.shape)}")
    c = torch.as_tensor(c, device=p.device).long().reshape(-1)
    if c.shape[0] != p.shape[0]:
        raise ValueError(f"c must have one class index per sample ({p.shape[0]}); got {c.shape[0]}")
    p_in = p_in.to(p.dtype)
    p_out = p_out.to(p.dtype)
    idx = c[:, None]
    pc = p.gather(1, idx)[:, 0]
    inc = p_in.gather(1, idx)[:, 0]
    outc = p_out.gather(1, idx)[:, 0]
    zero = torch.zeros_like(pc)
    # Safe denominators: the masked branch of torch.where is never used, but must stay finite.
    ad_den = torch.where(pc > 0, pc, torch.ones_like(pc))
    ag_den = torch.where(pc < 1, 1 - pc, torch.ones_like(pc))
    return {
        "AI": 100.0 * (inc > pc).to(p.dtype),
        "AD": torch.where(pc > 0, 100.0 * torch.relu(pc - inc) / ad_den, zero),
        "AG": torch.where(pc < 1, 100.0 * torch.relu(inc - pc) / ag_den, zero),
        "FF": pc - outc,
        "FidIn": (p_in.argmax(1) == c).to(p.dtype),
    }


# -- §4 mask statistics --------------------------------------------------------------------


def _flat_abs64(masks: torch.Tensor) -> torch.Tensor:
    if masks.ndim < 2:
        raise ValueError(f"masks must be batched [B, ...]; got shape {tuple(masks.shape)}")
    return masks.detach().reshape(masks.shape[0], -1).to(torch.float64).abs()


def sparseness(masks: torch.Tensor) -> torch.Tensor:
    """SPS: Gini index of abs(M) flattened, per sample, [B] float64. Higher = sparser.

    Exactly Quantus' ``Sparseness`` with its defaults (``abs=True``, ``normalise=True`` with
    ``normalise_by_max``) on a batch of one: a <- |M| / max|M|; a <- sort(a + 1e-7);
    SPS = sum_i (2i - n - 1) a_i / (n sum_i a_i), i = 1..n. Computed in float64.
    An all-zero mask gives exactly 0 (the formula's own value up to round-off: it becomes a
    constant map; Quantus itself refuses all-zero maps).
    """
    a = _flat_abs64(masks)
    n = a.shape[1]
    mx = a.amax(1, keepdim=True)
    a = torch.where(mx > 0, a / torch.where(mx > 0, mx, torch.ones_like(mx)), a)
    a = torch.sort(a + 1e-7, dim=1).values
    i = torch.arange(1, n + 1, dtype=torch.float64, device=a.device)
    gini = ((2 * i - n - 1) * a).sum(1) / (n * a.sum(1))
    return torch.where(mx[:, 0] > 0, gini, torch.zeros_like(gini))  # exact 0, not 1e-18 round-off


def complexity(masks: torch.Tensor) -> torch.Tensor:
    """COMP: entropy of abs(M) / sum abs(M), per sample, [B] float64. Lower = simpler.

    Exactly Quantus' ``Complexity`` (max-normalisation then ``p = a / sum a``,
    ``-sum p log(p + 1e-12)``; the max-normalisation cancels). Computed in float64.
    An all-zero mask (Quantus: 0/0) is treated as a constant one: p = 1/n, COMP ~= log(n).
    """
    a = _flat_abs64(masks)
    n = a.shape[1]
    s = a.sum(1, keepdim=True)
    p = torch.where(s > 0, a / torch.where(s > 0, s, torch.ones_like(s)), torch.full_like(a, 1.0 / n))
    return -(p * torch.log(p + 1e-12)).sum(1)


def mask_mean(masks: torch.Tensor) -> torch.Tensor:
    """MM: mean of each mask over all its non-batch dimensions, [B]."""
    if masks.ndim < 2:
        raise ValueError(f"masks must be batched [B, ...]; got shape {tuple(masks.shape)}")
    return masks.detach().reshape(masks.shape[0], -1).float().mean(1)


# -- §7 sanity checks ----------------------------------------------------------------------


def normalise_01(maps: torch.Tensor) -> torch.Tensor:
    """Per-sample min-max to [0, 1] of [B, ...] maps; a constant map becomes all zeros."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.amin(1, keepdim=True)
    rng = flat.amax(1, keepdim=True) - lo
    out = torch.where(rng > 0, (flat - lo) / torch.where(rng > 0, rng, torch.ones_like(rng)),
                      torch.zeros_like(flat))
    return out.reshape(maps.shape)


#: maps per torchmetrics SSIM call (its memory grows with the batch)
SSIM_CHUNK = 4


def ssim(a: torch.Tensor, b: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """Per-sample SSIM between explanation maps a, b: [B, H, W] -> [B] (float64).

    Each map is min-max normalised to [0, 1] on its own (:func:`normalise_01`; a constant map
    becomes zeros) unless ``normalise=False``, then torchmetrics'
    ``structural_similarity_index_measure(data_range=1, reduction='none')`` with its default
    Gaussian window (11 taps, sigma 1.5); for maps under 7 bins a side, sigma shrinks to
    (min(H, W) - 1) / 3.5 so the window fits (needs H, W >= 2). Identical maps -> 1.
    """
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"a and b must both be [B, H, W]; got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a.detach().to(torch.float64)
    b = b.detach().to(device=a.device, dtype=torch.float64)
    if normalise:
        a, b = normalise_01(a), normalise_01(b)
    m = min(a.shape[1], a.shape[2])
    if m < 2:
        raise ValueError(f"SSIM needs maps of at least 2 x 2; got {tuple(a.shape[1:])}")
    # torchmetrics' Gaussian window has 2 * int(3.5 sigma + 0.5) + 1 taps and reflect-pads by
    # half of it, which must stay below the map size: sigma shrinks for maps under 7 bins.
    sigma = min(1.5, (m - 1) / 3.5)
    # torchmetrics holds ~0.6 GB per 257 x 501 map pair: a few maps at a time keep it bounded
    # (50 esc50-mini clips at once asked for 31 GB)
    return torch.cat([
        structural_similarity_index_measure(
            a[i : i + SSIM_CHUNK, None], b[i : i + SSIM_CHUNK, None], data_range=1.0, sigma=sigma,
            reduction="none",
        ).reshape(-1)
        for i in range(0, a.shape[0], SSIM_CHUNK)
    ]) if a.shape[0] else a.new_zeros(0)


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample Spearman rank correlation between maps a, b: [B, H, W] -> [B] (float64).

    The second similarity of Adebayo et al.'s randomisation test: scale-free, and bins that are
    empty in both maps do not count as agreement the way SSIM's flat regions do. Tied values get
    their average rank (``scipy.stats.rankdata``, in float64: a map has over 10^5 bins, most of
    them tied at zero when it is sparse); a constant map, or one with a NaN or Inf, has no
    ranking, so its pair is NaN.
    """
    from scipy.stats import rankdata

    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"a and b must both be [B, H, W]; got {tuple(a.shape)} and {tuple(b.shape)}")
    x = a.detach().reshape(a.shape[0], -1).to("cpu", torch.float64).numpy()
    y = b.detach().reshape(b.shape[0], -1).to("cpu", torch.float64).numpy()
    ranked = np.isfinite(x).all(1) & np.isfinite(y).all(1) & (np.ptp(x, 1) > 0) & (np.ptp(y, 1) > 0)
    out = np.full(x.shape[0], np.nan)
    if ranked.any():
        rx, ry = rankdata(x[ranked], axis=1), rankdata(y[ranked], axis=1)
        rx -= rx.mean(1, keepdims=True)
        ry -= ry.mean(1, keepdims=True)
        out[ranked] = (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    return torch.from_numpy(out)


# -- §8 dataset shift ----------------------------------------------------------------------


def frechet_distance(x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to embeddings x [N, D] and y [M, D].

    ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` in float64, with sample covariances
    (``np.cov``, ddof=1). ``scipy.linalg.sqrtm(S1 S2)``; if that product is singular (sqrtm
    warns) or the root is not finite, retried on ``(S1 + eps I)(S2 + eps I)`` (the usual FID
    fix); the real part is kept and a tiny negative total (round-off) is clamped to 0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be [N, D] with the same D; got {x.shape} and {y.shape}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("need at least 2 samples per set to estimate a covariance")
    mu1, mu2 = x.mean(0), y.mean(0)
    s1 = np.atleast_2d(np.cov(x, rowvar=False))
    s2 = np.atleast_2d(np.cov(y, rowvar=False))

    def _sqrtm(m: np.ndarray) -> tuple[np.ndarray, bool]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = scipy.linalg.sqrtm(m)
        r = np.asarray(r[0] if isinstance(r, tuple) else r)
        bad = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
        return r, bad or not np.isfinite(r).all()

    covmean, bad = _sqrtm(s1 @ s2)
    if bad:
        off = np.eye(s1.shape[0]) * eps
        covmean, _ = _sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)


# -- aggregation ---------------------------------------------------------------------------


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): sample mean and a percentile-bootstrap (1 - alpha) CI of the mean.

    Resamples with replacement ``n_boot`` times (``np.random.default_rng(seed)``, vectorised
    in chunks of <= ~4M indices), CI = the alpha/2 and 1 - alpha/2 quantiles (numpy's default
    linear interpolation) of the resampled means. One value -> (v, v, v); none -> NaNs.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = v.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return (mean, mean, mean)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 4_000_000 // n))
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        means[start:start + k] = v[rng.integers(0, n, size=(k, n))].mean(1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (mean, float(lo), float(hi))


def cell_float(v: Any) -> float | None:
    """A cell of a per-sample row as float; None for a missing value ('', None, NaN)."""
    if v is None or (isinstance(v, str) and v.strip() == ""):
        return None
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return 1.0 if v.strip().lower() == "true" else 0.0
    f = float(v)
    return None if math.isnan(f) else f


def summarise(
    rows: Iterable[Mapping[str, Any]],
    metric_keys: Sequence[str],
    group_keys: Sequence[str],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Aggregate per-sample rows into one summary row per (group, metric), long format.

    Each output row: the group's ``group_keys`` values, ``metric``, ``mean``, ``ci_low``,
    ``ci_high`` (:func:`bootstrap_ci` with ``n_boot``/``alpha``/``seed``) and ``n``, the number
    of rows of the group with a value for that metric. Cells may be numbers, bools or strings
    as read back from a CSV ("true"/"false" count as 1/0); missing ones ('', None, NaN) are
    skipped; a metric with no value in a group gets NaN statistics and ``n = 0``. Groups come
    in order of first appearance, metrics in ``metric_keys`` order.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in group_keys), []).append(row)
    out: list[dict[str, Any]] = []
    for gval, grows in groups.items():
        for m in metric_keys:
            vals = [f for f in (cell_float(r.get(m)) for r in grows) if f is not None]
            mean, lo, hi = bootstrap_ci(np.asarray(vals), n_boot=n_boot, alpha=alpha, seed=seed)
            out.append({**dict(zip(group_keys, gval, strict=True)), "metric": m, "mean": mean, "ci_low": lo,
                        "ci_high": hi, "n": len(vals)})
    return out


# -- ground-truth localisation (synthetic world; masks and GT on the same [F, T] grid) -------


def energy_pointing_game(
    mask: torch.Tensor, magnitude: torch.Tensor | None, gt: torch.Tensor
) -> torch.Tensor:
    """[B] bool: does the argmax of ``mask * magnitude`` (over the [F, T] grid) lie inside ``gt``?

    ``magnitude=None`` gives the plain pointing game on the mask. Ties: the first flat index.
    A sample whose ``mask * magnitude`` is nowhere positive points nowhere: False.
    """
    if mask.shape != gt.shape or (magnitude is not None and magnitude.shape != mask.shape):
        raise ValueError("mask, magnitude and gt must share the same [B, F, T] shape")
    score = mask.detach().double()
    if magnitude is not None:
        score = score * magnitude.detach().double()
    flat = score.reshape(score.shape[0], -1)
    best, idx = flat.max(1)
    hit = gt.reshape(gt.shape[0], -1).bool().gather(1, idx[:, None])[:, 0]
    return hit & (best > 0)


def mask_precision_recall(
    mask: torch.Tensor,
    gt: torch.Tensor,
    energy: torch.Tensor | None = None,
    threshold: float | None = 0.5,
) -> dict[str, torch.Tensor]:
    """Per-sample precision, recall and F1 ([B] float64 each) of a mask against a GT region.

    The mask is binarised as ``mask >= threshold`` (``threshold=None``: its soft values are
    used as weights). With ``energy`` (e.g. the magnitude |X|, or |X|^2), every bin counts
    with its energy: precision = E(selected & GT) / E(selected), recall = E(selected & GT) /
    E(GT), i.e. the share of the kept energy that is target, and of the target energy that
    is kept; without it every bin weighs 1. A zero denominator gives 0 (nothing selected:
    precision 0; empty GT: recall 0), and F1 is 0 where precision + recall = 0.
    """
    if mask.shape != gt.shape or (energy is not None and energy.shape != mask.shape):
        raise ValueError("mask, gt and energy must share the same [B, F, T] shape")
    b = mask.shape[0]
    m = mask.detach().double().reshape(b, -1)
    sel = m if threshold is None else (m >= threshold).double()
    g = gt.detach().reshape(b, -1).double()
    w = torch.ones_like(m) if energy is None else energy.detach().double().reshape(b, -1).abs()
    tp = (w * sel * g).sum(1)
    den_p = (w * sel).sum(1)
    den_r = (w * g).sum(1)

    def _div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)),
                           torch.zeros_like(num))

    precision, recall = _div(tp, den_p), _div(tp, den_r)
    f1 = _div(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def auc(scores_pos: Any, scores_neg: Any) -> float:
    """ROC AUC = P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney U / (n_pos n_neg)).

    Exact pairwise count over sorted negatives (O((n_pos + n_neg) log n_neg)).
    Raises ValueError when either set is empty.
    """
    pos = _as_1d64(scores_pos)
    neg = np.sort(_as_1d64(scores_neg))
    if pos.size == 0 or neg.size == 0:
        raise ValueError("auc needs at least one positive and one negative score")
    below = np.searchsorted(neg, pos, side="left")  # negatives strictly below each positive
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (pos.size * neg.size))


def _as_1d64(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64).reshape(-1)
