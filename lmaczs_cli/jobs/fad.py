"""The fad job: Fréchet distance between two audio sets' CLAP embeddings (paper Table 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.provenance import RunRecord, trust_warnings
from lmaczs_cli.runtime import RunOptions
from lmaczs_cli.sharding import Ranks, current_shard


@dataclass
class FadConfig:
    """Two sets (folder, manifest CSV or NAME:ROOT) and where to write fad.csv."""

    set_a: str
    set_b: str
    out: Path
    run: RunOptions = field(default_factory=RunOptions)


def run_fad(cfg: FadConfig, reporter: Reporter | None = None) -> tuple[dict, int]:
    """The fad.csv row (sets, sizes, model, distance) and the number of unusable clips."""
    from lmaczs_cli.metrics import frechet_distance
    from lmaczs_cli.models.registry import load_model
    from lmaczs_cli.outdir import OutDir, check_out_dir
    from lmaczs_cli.preflight import check_ready

    rep, run = reporter or Reporter(), cfg.run
    files_a, files_b = resolve_set(cfg.set_a), resolve_set(cfg.set_b)
    check_out_dir(cfg.out)
    check_ready("compute a Fréchet distance", run)
    shard = current_shard()  # torchrun: each rank embeds its share, rank 0 computes the distance
    ranks = Ranks(shard, run.device)
    try:
        model = load_model(run.clap, run.clap_ckpt, run.tokenizer_dir, ranks.device, run.seed)
        bs, nw = run.batch_size, run.num_workers
        ea, err_a = _gathered(ranks, *embed_files(model, shard.take(files_a), bs, nw))
        eb, err_b = _gathered(ranks, *embed_files(model, shard.take(files_b), bs, nw))
    finally:
        ranks.close()
    if not shard.first:
        return {}, 0  # rank 0 reports every unusable clip and writes the row
    for e in err_a + err_b:
        rep.error(f"lmaczs: {e}")
    for name, emb in ((cfg.set_a, ea), (cfg.set_b, eb)):
        if len(emb) == 0:
            raise UsageError(f"{name}: no usable clips in the set")
    row = {"set_a": cfg.set_a, "set_b": cfg.set_b, "n_a": len(ea), "n_b": len(eb), "model": run.clap,
           "frechet_distance": frechet_distance(ea, eb)}
    record = RunRecord("fad", model, {}, None, run)
    for w in trust_warnings(model, run.precision):
        rep.warn(w)
    with OutDir(cfg.out) as out:  # one row per (sets, model): earlier pairs of sets are kept
        out.update_table("fad.csv", [row], list(row), lambda r: (r["set_a"], r["set_b"], r["model"]))
        record.write(cfg.out, rep.warnings, {"result": row})
    rep.result(row)
    return row, len(err_a) + len(err_b)


def _gathered(ranks: Ranks, emb, errors: list[str]):
    """Every rank's embeddings (stacked in rank order) and errors: the whole set's."""
    parts = ranks.gather((emb, errors))
    if len(parts) == 1:
        return emb, errors
    arrays = [e for e, _ in parts if len(e)]
    return (np.concatenate(arrays) if arrays else emb), [x for _, errs in parts for x in errs]


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
    from lmaczs_cli.data.loading import window_batches

    embs, errors = [], []
    with torch.no_grad():
        for batch in window_batches(files, model, batch_size, num_workers):
            ok = [i for i, e in enumerate(batch["error"]) if e is None]
            errors += [e for e in batch["error"] if e is not None]
            if ok:
                mag, _ = model.spectrogram(batch["wave"][ok].to(model.device))
                embs.append(model.encode(mag).embedding.float().cpu().numpy())
    if not embs:  # the caller says which set has no usable clip
        return np.zeros((0, 0)), errors
    return np.concatenate(embs).astype(np.float64), errors
