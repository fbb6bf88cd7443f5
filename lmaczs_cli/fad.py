"""Fréchet distance between two audio sets' CLAP embeddings (paper Table 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lmaczs_cli.errors import UsageError


def resolve_set(spec: str) -> list[Path]:
    """Audio files of a set: a folder, a manifest CSV, or ``NAME:ROOT`` for a known data set."""
    from lmaczs_cli.audio import find_audio_files
    from lmaczs_cli.data.registry import DATASET_NAMES, load_dataset

    name, sep, root = spec.partition(":")
    if sep and name in DATASET_NAMES:
        return [Path(it.path) for it in load_dataset(name, root).items]
    p = Path(spec)
    if p.is_dir():
        files = find_audio_files(p)
    elif p.is_file() and p.suffix.lower() == ".csv":
        files = [Path(it.path) for it in load_dataset("manifest", p).items]
    else:
        raise UsageError(f"{spec}: not a folder, a manifest CSV, or NAME:ROOT "
                         f"(NAME one of {', '.join(DATASET_NAMES)})")
    if len(files) < 2:
        raise UsageError(f"{spec}: a Fréchet distance needs at least 2 clips, found {len(files)}")
    return files


def embed_files(
    model, files: list[Path], batch_size: int, num_workers: int = 0
) -> tuple[np.ndarray, list[str]]:
    """Audio embeddings [N, D] of the files' first windows, plus the errors of unusable files."""
    from lmaczs_cli.pipeline import clip_batches

    embs, errors = [], []
    with torch.no_grad():
        for batch in clip_batches(files, model, batch_size, num_workers):
            ok = [i for i, e in enumerate(batch["error"]) if e is None]
            errors += [e for e in batch["error"] if e is not None]
            if ok:
                mag, _ = model.spectrogram(batch["wave"][ok].to(model.device))
                embs.append(model.encode(mag).embedding.float().cpu().numpy())
    if not embs:
        raise UsageError("no usable clips in the set")
    return np.concatenate(embs).astype(np.float64), errors
