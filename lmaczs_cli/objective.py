"""The LMAC-ZS training objective (METHOD.md section 3) and validation statistics.

For B clips and P distinct prompts (the batch's captions, de-duplicated, plus
any label prompts the run adds), every (clip i, prompt j) pair is used:

    s_ij  = t_j . a_i                                   (no grad)
    s~_ij = t_j . f_audio(InputTf(M_ij * X_i))          (grad to the decoder only)
    L_sim = mean_ij (s_ij - s~_ij)^2
    L_reg = l1 * mean_ij k_ij + tv * TV(M)
    L_out = out * mean_(i,j) in O relu(t_j . f_audio(InputTf((1 - M_ij) * X_i)) - m)
    L_div = div * (1 - pearson({mean M_ij}, {c_ij}))
    L_abs = absent * mean_(i,j) in U mean M_ij           (off by default)
    L     = L_sim + L_reg + L_out + L_div + L_abs

``L_abs`` (ours): U are the pairs L_out does not look at (s_ij at most the batch's mean s_bar,
not the clip's own caption); it asks for empty masks there. Faithful only for a model whose
empty input is as dissimilar to a prompt as an unrelated clip (docs/results.md, "Known limits").

``L_out`` (ours): ``out_pairs="own"`` is the spec's term, O = {(i, own caption)},
margin m = 0. ``"matching"`` (default) also takes every pair whose s_ij exceeds
the batch's mean similarity s_bar, with m = s_bar: what a mask removes must look
no more like its prompt than an unrelated clip does, which forces the mask to
keep *all* of the prompted event (and L1 to drop the rest).

``k_ij`` (``l1_on``): ``"mask"`` is the spec's mean(M); ``"power"`` (default) is the
share of the clip's power the mask keeps, sum M X^2 / sum X^2 (``"energy"``: with X).
Power weighting makes the loudest bins the most expensive to keep, so a mask no
longer reproduces a mixture's (lower) similarity by keeping another, louder
event: on 300 held-out scenes the energy pointing game rose from 0.50 to 0.66 with
|s - s~| at 0.045. ``c_ij`` (``div_target``): ``"s"`` is s_ij; ``"centred"`` (default)
is s_ij minus clip i's mean over the prompts, i.e. how much better prompt j fits
the clip than the others do, which separates present from absent prompts better
than s itself (AUC 0.98 vs 0.93 for the bundled model).

All means are over the *global* batch: ``global_sum`` turns a local sum into the
sum over every DDP rank (identity in one process), so a run on W ranks with B
clips each optimises exactly the loss of one process with W*B clips (every rank
holds the same prompts, gathered from all ranks, so the centring is the same too).

Default weights, tuned on the previous (uncalibrated) bundled small model and synthetic scenes
(held-out ground truth; see ``lmaczs_cli/assets/small/decoder_card.json`` and
docs/results.md, "Known limits", for the variants tried):

==============  ==========  ======================================================
weight          default     why
==============  ==========  ======================================================
``l1``          0.035       with ``power``; 0.04 gives |s-s~| 0.051 on held-out scenes
``l1_on``       power       pointing 0.66 vs 0.51 (mask) / 0.59 (energy), l1 0.05,
                            150 held-out scenes
``tv``          0.0         the decoder's upsampling already gives smooth masks
``out``         0.3         with ``matching``: prompt-specific masks; 0.15 points
                            worse (0.58), 1.0 costs faithfulness
``out_pairs``   matching    "own" (the spec's term) barely localises
``div``         0.15        with ``centred``: mask-mean AUC 0.95 (0.05: 0.925)
``div_target``  centred     see above
``absent``      0.0         0.3 for the bundled decoders (``--preset small``, on the
                            calibrated bundled model): absent/present mask means
                            0.03 (0.60 without), maps vanish under randomisation,
                            but |s-s~| 0.073 and pointing 0.50 (0.665 without)
==============  ==========  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from lmaczs_cli.models.base import Encoded, ZeroShotModel

MaskFn = Callable[[torch.Tensor, Encoded, torch.Tensor], torch.Tensor]
SumFn = Callable[[torch.Tensor], torch.Tensor]


OUT_PAIRS = ("own", "matching")
SIM_LOSSES = ("symmetric", "one_sided")
OUT_REFS = ("batch", "clip")
L1_ON = ("mask", "energy", "power")
DIV_TARGETS = ("s", "centred")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the regularisers (L_sim always has weight 1)."""

    l1: float = 0.035
    tv: float = 0.0
    out: float = 0.3
    div: float = 0.15
    #: L_out pairs: "own" (clip i, its caption; margin 0: the spec's term) or "matching"
    #: (also every pair with s_ij above the batch's mean similarity, which is then the margin)
    out_pairs: str = "matching"
    #: what L1 averages: "mask" (mean M, the spec's term), "energy" (the share of the clip's
    #: magnitude that M keeps) or "power" (the share of its power: loud bins cost most)
    l1_on: str = "power"
    #: what L_div ties mask means to: "s" (s_ij) or "centred" (s_ij minus clip i's mean over
    #: the batch's prompts: how much better prompt j fits clip i than its other prompts)
    div_target: str = "centred"
    #: weight of the absent-prompt term: plain mean(M) over the pairs L_out does not look at
    #: (s_ij at most the batch's mean similarity, not the clip's own caption)
    absent: float = 0.0
    #: L_sim: "symmetric" (s - s~)^2 (the paper's) or "one_sided" relu(s - s~ - sim_margin): the
    #: masked clip must match at least as well as the clip, never penalised for matching better
    sim_loss: str = "symmetric"
    sim_margin: float = 0.0
    #: weight of L_cls: on L_out's pairs, the masked clip's zero-shot cross-entropy over the batch's
    #: prompts with the explained prompt as the class (the clip's own caption left out for the
    #: others): the map keeps what tells this prompt from the other sounds in the clip
    cls: float = 0.0
    #: weight of plain mean(M) on top of a power- or energy-weighted L1 (quiet bins are not free)
    l1_mask: float = 0.0
    #: L_out's margin with "matching": "batch" (the batch's mean s) or "clip" (the clip's median s
    #: over the batch's prompts: most do not describe it, so that is an unrelated prompt's level)
    out_ref: str = "batch"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("out_pairs", OUT_PAIRS), ("l1_on", L1_ON), ("div_target", DIV_TARGETS),
            ("sim_loss", SIM_LOSSES), ("out_ref", OUT_REFS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r}: expected one of {', '.join(allowed)}")

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


@dataclass
class LossResult:
    """The loss to back-propagate and its parts (floats, for logging), plus detached pair data."""

    total: torch.Tensor
    parts: dict[str, float]
    sims: torch.Tensor  # [B, P] s_ij
    masked_sims: torch.Tensor  # [B, P] s~_ij
    mask_means: torch.Tensor  # [B, P] mean(M_ij)
    masked_embeddings: torch.Tensor  # [B, P, D] f_audio(InputTf(M_ij * X_i))


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def batch_mean(sims: torch.Tensor, global_sum: SumFn) -> torch.Tensor:
    """The mean similarity over the global batch: the line between L_out's and L_abs's pairs."""
    n = global_sum(torch.tensor(float(sims.numel()), device=sims.device))
    return global_sum(sims.sum()) / n


def _out_pairs(
    sims: torch.Tensor, own: torch.Tensor, mode: str, global_sum: SumFn, ref: str = "batch"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
    """(clip index, prompt index, margin) of the pairs L_out looks at."""
    b = sims.shape[0]
    rows = torch.arange(b, device=sims.device)
    if mode == "own":
        return rows, own, 0.0
    tau = batch_mean(sims, global_sum) if ref == "batch" else sims.median(1, keepdim=True).values
    sel = sims > tau
    sel[rows, own] = True
    ci, pj = sel.nonzero(as_tuple=True)
    return ci, pj, (tau if ref == "batch" else tau[ci, 0])


@dataclass(frozen=True)
class EvidenceWeights:
    """Weights of the per-pair evidence objective (:func:`evidence_terms`)."""

    #: s~ may fall this far below s before the keep term counts
    margin: float = 0.0
    #: weight of relu(s_residual - tau): what the mask removes no longer matches the prompt
    residual: float = 0.2
    #: weight of mean(M)
    l1: float = 0.5
    #: weight of the share of the clip's power the mask keeps (sum M X^2 / sum X^2): a leak onto a
    #: louder event costs what that event weighs, so M * X stops peaking there
    power: float = 0.0


def evidence_terms(
    s: torch.Tensor,
    s_in: torch.Tensor,
    s_out: torch.Tensor,
    tau: torch.Tensor,
    size: torch.Tensor,
    weights: EvidenceWeights,
    power: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-pair terms of the one-sided evidence objective (all tensors [N]).

    ``keep = relu(s - s~ - margin)``: the masked clip matches the prompt at least as well as the
    clip (never penalised for matching better, unlike (s - s~)^2, which a quiet event's mask can
    only meet by keeping louder events); ``residual = relu(s_out - tau)``: what the mask removes
    matches the prompt no better than the clip's reference level ``tau``; ``size``: mean(M);
    ``power``: the kept share of the clip's power (needed when ``weights.power`` > 0).
    """
    keep = torch.relu(s - s_in - weights.margin)
    residual = torch.relu(s_out - tau)
    total = keep + weights.residual * residual + weights.l1 * size
    out = {"keep": keep, "residual": residual, "size": size}
    if weights.power > 0:
        if power is None:
            raise ValueError("evidence_terms: weights.power > 0 needs the kept power share")
        total = total + weights.power * power
        out["power"] = power
    out["total"] = total
    return out


Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]


def _out_term(
    model: ZeroShotModel, magnitude: torch.Tensor, masks: torch.Tensor, text: torch.Tensor,
    pairs: Pairs, global_sum: SumFn,
) -> torch.Tensor:
    """L_out: mean over its ``pairs`` (from :func:`_out_pairs`) of relu(t_j . f((1 - M_ij) X_i) - margin)."""
    ci, pj, tau = pairs
    kept = masks[ci, pj]  # [K, F, T]
    out_emb = model.encode((1 - kept) * magnitude[ci]).embedding.float()
    out_sim = (out_emb * text.float()[pj]).sum(-1)
    n = global_sum(torch.tensor(float(len(ci)), device=masks.device)).clamp_min(1)
    return global_sum(torch.relu(out_sim - tau).sum()) / n


def _class_term(
    model: ZeroShotModel, emb: torch.Tensor, text: torch.Tensor, own: torch.Tensor, pairs: Pairs,
    global_sum: SumFn,
) -> torch.Tensor:
    """L_cls: mean over L_out's ``pairs`` (i, j) of -log softmax_k(scale * t_k . a~_ij)[j]."""
    b, p = emb.shape[:2]
    scale = float(getattr(model, "logit_scale", 1.0 / 0.07))
    logits = scale * torch.einsum("bjd,kd->bjk", emb, text.float())  # [B, P(explained), P(candidates)]
    rows = torch.arange(b, device=emb.device)
    not_own = torch.ones(b, p, p, dtype=torch.bool, device=emb.device)
    not_own[rows, :, own] = False  # a clip's caption names every sound in it: not a rival ...
    not_own[rows, own, own] = True  # ... except when it is the explained prompt itself
    logits = logits.masked_fill(~not_own, float("-inf"))
    ce = torch.logsumexp(logits, -1) - logits.diagonal(dim1=1, dim2=2)  # [B, P]
    ci, pj, _ = pairs
    n = global_sum(torch.tensor(float(len(ci)), device=emb.device)).clamp_min(1)
    return global_sum(ce[ci, pj].sum()) / n


def kept_share(magnitude: torch.Tensor, masks: torch.Tensor, power: bool) -> torch.Tensor:
    """[B, P] share of each clip's magnitude (or power, ``power=True``) that ``M_ij * X_i`` keeps.

    With power, the weight of a bin is X^2 but the mask enters linearly (sum M X^2 / sum X^2),
    so the term stays a weighted mean of M: all ones -> 1, all zeros -> 0.
    """
    w = magnitude.float().square() if power else magnitude.float()
    total = w.sum((-2, -1)).clamp_min(1e-12)  # [B]
    return torch.einsum("bpft,bft->bp", masks.float(), w) / total[:, None]


def masked_similarity(
    model: ZeroShotModel, magnitude: torch.Tensor, masks: torch.Tensor, text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s~`` [B, P] and masked embeddings [B, P, D] for masks [B, P, F, T] and prompts [P, D]."""
    b, p = masks.shape[:2]
    x = (masks * magnitude[:, None]).reshape(b * p, *magnitude.shape[1:])
    emb = model.encode(x).embedding.float().view(b, p, -1)
    return (emb * text.float()[None]).sum(-1), emb


def pearson_from_sums(s: torch.Tensor) -> torch.Tensor:
    """Pearson r from ``[n, Sx, Sy, Sxx, Syy, Sxy]`` (float64); 0 when a variance vanishes."""
    n, sx, sy, sxx, syy, sxy = s.unbind()
    n = n.clamp_min(1)
    cov = sxy / n - (sx / n) * (sy / n)
    vx = (sxx / n - (sx / n) ** 2).clamp_min(0)
    vy = (syy / n - (sy / n) ** 2).clamp_min(0)
    return cov / torch.sqrt(vx * vy + 1e-18)


def pearson_sums(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[n, Sx, Sy, Sxx, Syy, Sxy]`` in float64 for paired values x, y (any equal shapes)."""
    x, y = x.double().flatten(), y.double().flatten()
    n = torch.tensor(float(x.numel()), dtype=torch.float64, device=x.device)
    return torch.stack([n, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()])


def total_variation_sums(masks: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum of |frequency steps| / their count + |time steps| / their count, summed over masks.

    Returned as (sum over masks of the per-mask TV, number of masks).
    """
    m = masks.reshape(-1, *masks.shape[-2:]).float()
    df = (m[:, 1:, :] - m[:, :-1, :]).abs().mean((1, 2))
    dt = (m[:, :, 1:] - m[:, :, :-1]).abs().mean((1, 2))
    return (df + dt).sum(), m.shape[0]


def lmaczs_objective(
    model: ZeroShotModel,
    magnitude: torch.Tensor,
    text: torch.Tensor,
    own: torch.Tensor,
    mask_fn: MaskFn,
    weights: LossWeights = LossWeights(),
    encoded: Encoded | None = None,
    global_sum: SumFn = _identity,
) -> LossResult:
    """The LMAC-ZS loss for clips ``magnitude`` [B, F, T] and prompts ``text`` [P, D].

    ``own`` [B]: index into ``text`` of each clip's own caption (for ``L_out``).
    ``mask_fn(magnitude, encoded, text) -> [B, P, F, T]`` gives the masks.
    ``global_sum`` sums a tensor over DDP ranks keeping this rank's gradient path.
    """
    magnitude = magnitude.detach()
    text = text.detach()
    if encoded is None:
        with torch.no_grad():
            encoded = model.encode(magnitude)
    a = encoded.embedding.detach().float()
    sims = a @ text.float().T  # [B, P]
    masks = mask_fn(magnitude, encoded, text)  # [B, P, F, T]
    b, p = masks.shape[:2]
    masked, emb = masked_similarity(model, magnitude, masks, text)

    n_pairs = global_sum(torch.tensor(float(b * p), device=sims.device))
    if weights.sim_loss == "one_sided":
        gap = torch.relu(sims - masked - weights.sim_margin)
    else:
        gap = (sims - masked) ** 2
    l_sim = global_sum(gap.sum()) / n_pairs
    mask_means = masks.float().mean((-2, -1))  # [B, P]
    mean_mask = global_sum(mask_means.sum()) / n_pairs
    parts = {"sim": l_sim, "l1": mean_mask}
    l1_term = mean_mask
    if weights.l1_on != "mask":
        kept = kept_share(magnitude, masks, power=weights.l1_on == "power")
        l1_term = parts["kept"] = global_sum(kept.sum()) / n_pairs
    total = l_sim + weights.l1 * l1_term
    if weights.l1_mask > 0 and weights.l1_on != "mask":
        total = total + weights.l1_mask * mean_mask
    if weights.tv > 0:
        tv_sum, n_masks = total_variation_sums(masks)
        tv = global_sum(tv_sum) / global_sum(torch.tensor(float(n_masks), device=sims.device))
        total = total + weights.tv * tv
        parts["tv"] = tv
    if weights.out > 0 or weights.cls > 0:
        pairs = _out_pairs(sims, own, weights.out_pairs, global_sum, weights.out_ref)
    if weights.out > 0:
        l_out = _out_term(model, magnitude, masks, text, pairs, global_sum)
        total = total + weights.out * l_out
        parts["out"] = l_out
    if weights.cls > 0:
        l_cls = _class_term(model, emb, text, own, pairs, global_sum)
        total = total + weights.cls * l_cls
        parts["cls"] = l_cls
    if weights.absent > 0:
        unrelated = sims <= batch_mean(sims, global_sum)
        unrelated[torch.arange(b, device=sims.device), own] = False
        l_abs = global_sum((mask_means * unrelated).sum()) / global_sum(unrelated.sum().float()).clamp_min(1)
        total = total + weights.absent * l_abs
        parts["absent"] = l_abs
    if weights.div > 0:
        target = sims - sims.mean(1, keepdim=True) if weights.div_target == "centred" else sims
        corr = pearson_from_sums(global_sum(pearson_sums(mask_means, target)))
        l_div = (1 - corr).float()
        total = total + weights.div * l_div
        parts["div"] = l_div
    parts["total"] = total
    return LossResult(
        total=total,
        parts={k: float(v.detach()) for k, v in parts.items()},
        sims=sims.detach(),
        masked_sims=masked.detach(),
        mask_means=mask_means.detach(),
        masked_embeddings=emb.detach(),
    )


# -- validation statistics ---------------------------------------------------------

STAT_KEYS = ("pairs", "abs_err", "sq_err", "clips", "fid_in", "mask_sum")


def pair_stats(result: LossResult, text: torch.Tensor) -> torch.Tensor:
    """Sums over one batch, to be added across batches and ranks (float64 vector).

    ``[pairs, sum|s - s~|, sum (s - s~)^2, clips, Fid-In hits, sum mask mean,
    n, Sx, Sy, Sxx, Syy, Sxy]`` with the Pearson sums of (mask mean, s).
    Fid-In: the clip's top prompt c = argmax_j s_ij still wins among the batch's
    prompts on the input masked for c (``argmax_j t_j . a~_ic == c``).
    """
    s, st = result.sims.double(), result.masked_sims.double()
    b = s.shape[0]
    top = s.argmax(1)
    emb_top = result.masked_embeddings[torch.arange(b, device=top.device), top]  # [B, D]
    fid = ((emb_top.float() @ text.float().T).argmax(1) == top).sum()
    base = torch.stack([
        torch.tensor(float(s.numel()), dtype=torch.float64, device=s.device),
        (s - st).abs().sum(),
        ((s - st) ** 2).sum(),
        torch.tensor(float(b), dtype=torch.float64, device=s.device),
        fid.double(),
        result.mask_means.double().sum(),
    ])
    return torch.cat([base, pearson_sums(result.mask_means, result.sims)])


def finalize_stats(sums: torch.Tensor) -> dict[str, float]:
    """Turn summed :func:`pair_stats` vectors into metrics."""
    v = sums.double().cpu()
    pairs, abs_err, sq_err, clips, fid, mask_sum = v[:6].tolist()
    pairs = max(pairs, 1.0)
    return {
        "l_sim": sq_err / pairs,
        "mae": abs_err / pairs,
        "corr": float(pearson_from_sums(v[6:])),
        "fid_in": fid / max(clips, 1.0),
        "mask_mean": mask_sum / pairs,
        "pairs": int(v[0]),
    }
