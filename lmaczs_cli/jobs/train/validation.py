"""Validation metrics of a decoder over fixed global batches (independent of the number of ranks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from lmaczs_cli.explainers.decoder import MaskDecoder
from lmaczs_cli.explainers.lmaczs import LMACZS
from lmaczs_cli.jobs.train.config import TrainConfig
from lmaczs_cli.jobs.train.data import collate_records
from lmaczs_cli.jobs.train.distributed import DistInfo, all_gather_objects
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.objective import LossWeights, finalize_stats, lmaczs_objective, pair_stats
from lmaczs_cli.runtime import autocast


class ValidationCache:
    """The fixed validation set's unmasked work, kept between validations: per batch, the usable
    clips' captions, magnitudes and encodings (hidden maps too), on the CPU, within a budget.
    Only the masked encodes, which depend on the decoder, are redone each time."""

    def __init__(self, budget_bytes: int = 2 << 30) -> None:
        self.parts: dict[int, tuple[list[str], torch.Tensor, Encoded]] = {}
        self.budget, self.used = budget_bytes, 0
        self.errors: list[str] = []

    def get(self, k: int, device: torch.device) -> tuple[list[str], torch.Tensor, Encoded] | None:
        hit = self.parts.get(k)
        if hit is None:
            return None
        texts, mag, enc = hit
        return texts, mag.to(device), Encoded(enc.embedding.to(device), [h.to(device) for h in enc.hidden])

    def put(self, k: int, texts: list[str], mag: torch.Tensor, enc: Encoded) -> None:
        size = sum(t.numel() * t.element_size() for t in (mag, enc.embedding, *enc.hidden))
        if self.used + size <= self.budget:
            self.used += size
            self.parts[k] = (texts, mag.cpu(), Encoded(enc.embedding.cpu(), [h.cpu() for h in enc.hidden]))


@torch.no_grad()
def validate(
    model: ZeroShotModel,
    decoder: MaskDecoder,
    val_set: Dataset,
    cfg: TrainConfig,
    info: DistInfo,
    weights: LossWeights,
    collate_fn: Callable[[list[Any]], dict[str, Any]] = collate_records,
    on_error: Callable[[str], None] | None = None,
    cache: ValidationCache | None = None,
) -> dict[str, float]:
    """Validation metrics over fixed global batches of ``val_set``.

    Global batch k is clips ``[k*B*W, (k+1)*B*W)``; rank r takes its r-th slice of
    B clips and pairs them with the captions of the whole global batch, as in
    training, so the numbers do not depend on the number of ranks.
    ``l_sim``/``mae``: over all (clip, prompt) pairs; ``corr``: Pearson(mask
    mean, s) over all pairs; ``fid_in``: Fid-In among each batch's prompts;
    ``val_loss``: ``l_sim + l1 * mask_mean + div * (1 - corr)`` (selects best.pt).
    ``on_error`` is called with each unusable clip's one-line error. With ``cache``, the
    clips are decoded and encoded once per run, not once per validation.
    """
    n, b = len(val_set), cfg.batch_size
    chunks = [range(i, min(i + b * info.world, n)) for i in range(0, n, b * info.world)]
    mine = [list(c[info.rank * b : (info.rank + 1) * b]) for c in chunks]
    cache = cache if cache is not None else ValidationCache(0)
    todo = [m for k, m in enumerate(mine) if m and k not in cache.parts]
    loader = iter(DataLoader(val_set, batch_sampler=todo, num_workers=cfg.num_workers, collate_fn=collate_fn)
                  if todo else [])
    explainer = LMACZS(decoder)
    sums = torch.zeros(12, dtype=torch.float64, device=info.device)
    for k, part in enumerate(mine):
        texts, mag, enc = _part(model, loader, k, part, cache, info, on_error)
        gathered = [t for rt in all_gather_objects(info, texts) for t in rt]
        prompts = list(dict.fromkeys(gathered + list(cfg.extra_prompts)))
        if not texts or len(prompts) < 2:
            continue
        own = torch.tensor([prompts.index(t) for t in texts], device=info.device)
        text = model.embed_text(prompts)
        with autocast(info.device, cfg.precision):
            res = lmaczs_objective(
                model, mag, text, own, lambda m, e, t: explainer.pair_masks(model, m, t, e),
                LossWeights(l1=0.0, tv=0.0, out=0.0, div=0.0), encoded=enc,
            )
        sums += pair_stats(res, text).to(sums.device)
    if info.enabled:
        dist.all_reduce(sums)
    metrics = finalize_stats(sums)
    metrics["val_loss"] = (
        metrics["l_sim"] + weights.l1 * metrics["mask_mean"] + weights.div * (1.0 - metrics["corr"])
    )
    return metrics


def _part(model, loader, k: int, part: list[int], cache: ValidationCache, info: DistInfo,
          on_error) -> tuple[list[str], torch.Tensor | None, Encoded | None]:
    """This rank's clips of global batch ``k``: captions, magnitudes, encodings (cached or computed)."""
    hit = cache.get(k, info.device)
    if hit is not None:
        return hit
    if not part:
        return [], None, None
    batch = next(loader)
    ok = [i for i, e in enumerate(batch["error"]) if e is None]
    for e in batch["error"]:
        if e is not None and on_error is not None:
            on_error(e)
    texts = [batch["text"][i] for i in ok]
    if not ok:
        return [], None, None
    mag, _ = model.spectrogram(batch["wave"][ok].to(info.device))
    enc = model.encode(mag)
    cache.put(k, texts, mag, enc)
    return texts, mag, enc
