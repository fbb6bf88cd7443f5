"""Embedding a run's prompts up front: batched, with a progress bar for long label lists."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lmaczs_cli.jobs.reporter import Reporter

#: prompts embedded at once (a long label list: thousands of labels in minutes, not hours)
TEXT_BATCH = 64


def embed_prompts(model, texts: Sequence[str], rep: Reporter) -> torch.Tensor:
    """``model.embed_text(texts)`` [P, D], filling the model's text cache ``TEXT_BATCH`` prompts
    at a time; a list longer than one batch shows a progress bar ("text")."""
    unique = list(dict.fromkeys(texts))
    if len(unique) <= TEXT_BATCH:
        return model.embed_text(texts, batch_size=TEXT_BATCH)
    with rep.progress(len(unique), "text") as advance:
        for i in range(0, len(unique), TEXT_BATCH):
            chunk = unique[i : i + TEXT_BATCH]
            model.embed_text(chunk, batch_size=TEXT_BATCH)
            advance(len(chunk))
    return model.embed_text(texts)
