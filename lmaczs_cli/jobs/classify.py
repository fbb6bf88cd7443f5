"""The classify job: zero-shot top-k prompts per clip -> classify.csv."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE
from lmaczs_cli.inputs import Inputs
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.provenance import RunRecord, domain_warning, trust_warnings
from lmaczs_cli.runtime import RunOptions
from lmaczs_cli.sharding import Ranks, Shard, current_shard

COLUMNS = ["clip", "rank", "label", "prompt", "similarity", "probability", "in_domain", "status", "error",
           "run_id", "model"]


@dataclass
class ClassifyConfig:
    """A classify run: inputs, candidate prompts, how many to keep per clip."""

    inputs: list[Path]
    out: Path
    prompt: list[str] | None = None
    prompts_file: Path | None = None
    labels: str | None = None
    prompt_template: str = DEFAULT_TEMPLATE
    top_k: int = 5
    files_from: str | None = None
    #: ``"I/N"``: classify only this share of the inputs (torchrun ranks split it further)
    shard: str | None = None
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class ClassifyResult:
    """Rows of classify.csv (top-k per clip, or one error row), failures and the table's path."""

    rows: list[dict]
    failed: int
    n_inputs: int
    csv_path: Path


def run_classify(cfg: ClassifyConfig, reporter: Reporter | None = None) -> ClassifyResult:
    """Rank the prompts for every clip (its first model window; a fusion model: the whole clip as it
    sees it) by zero-shot probability."""
    from lmaczs_cli.data.prompts import duplicate_warning, resolve_prompts
    from lmaczs_cli.inputs import collect_inputs, shard_inputs
    from lmaczs_cli.outdir import check_out_dir
    from lmaczs_cli.preflight import check_ready
    from lmaczs_cli.runtime import seed_everything

    rep, run = reporter or Reporter(), cfg.run
    prompts = resolve_prompts(cfg.prompt, cfg.prompts_file, cfg.labels, cfg.prompt_template)
    if (dup := duplicate_warning(prompts)) is not None:
        rep.warn(dup)
    shard = current_shard(cfg.shard)
    inputs = shard_inputs(collect_inputs(cfg.inputs, cfg.files_from), shard)
    check_out_dir(cfg.out)
    check_ready("classify", run)
    seed_everything(run.seed)
    ranks = Ranks(shard, run.device)
    try:
        return _classify(cfg, rep, prompts, inputs, shard, ranks)
    finally:
        ranks.close()


def _classify(cfg: ClassifyConfig, rep: Reporter, prompts: list, inputs: Inputs, shard: Shard,
              ranks: Ranks) -> ClassifyResult:
    """The run once it can go ahead (this share of the inputs)."""
    from lmaczs_cli.data.loading import window_batches
    from lmaczs_cli.models.registry import load_model
    from lmaczs_cli.outdir import OutDir

    run, paths = cfg.run, inputs.paths
    model = load_model(run.clap, run.clap_ckpt, run.tokenizer_dir, ranks.device, run.seed)
    for w in trust_warnings(model, run.precision):
        rep.warn(w)
    from lmaczs_cli.jobs.text_embedding import embed_prompts

    text = embed_prompts(model, [p.text for p in prompts], rep).float()
    k = min(cfg.top_k, len(prompts))
    rows: list[dict] = []
    for p in inputs.problems:
        rep.error(f"lmaczs: {p.reason}")
        rows.append({"clip": p.path, "status": "error", "error": p.reason})
    failed = len(inputs.problems)
    fused = getattr(model, "fuses_long_clips", False)
    views: dict[str, dict] = {}  # a fused model's view of each clip longer than one window
    batches = (_whole_clip_batches(paths, model, run.batch_size, run.num_workers) if fused
               else window_batches(paths, model, run.batch_size, run.num_workers))
    with rep.progress(len(paths), "classify") as advance:
        for batch in batches:
            for i, e in enumerate(batch["error"]):
                if e is not None:
                    failed += 1
                    rep.error(f"lmaczs: {e}")
                    rows.append({"clip": batch["path"][i], "status": "error", "error": e})
            rows += _top_k(model, batch, text, prompts, k, run.precision, views)
            advance(len(batch["error"]))
    touched = {r["clip"] for r in rows}
    warning = domain_warning({r["clip"]: r.get("in_domain") for r in rows if r.get("status") == "ok"},
                             model.name, "classify.csv")
    if warning:
        rep.warn(warning)
    record = RunRecord("classify", model, {}, None, run)
    record.join(ranks.gather(record.run_id)[0], shard.record())
    for clip, view in views.items():
        record.note_fusion(clip, view)
    if views:
        rep.warn(f"{model.name} sees a clip longer than {model.window_seconds:g} s whole (feature fusion): "
                 f"{len(views)} clip{'s' if len(views) != 1 else ''} scored by the fused embedding (the "
                 f"whole clip shrunk to one window + three crops at starts chosen by rule "
                 f"{getattr(model, 'crop_rule', '?')!r}, recorded per clip in run.json 'fusion')")
    for r in rows:
        r.update(run_id=record.run_id, model=model.name)
        rep.result({c: r.get(c) for c in COLUMNS if r.get(c) is not None})
    with OutDir(cfg.out) as out:  # rows of clips classified before and not now are kept
        out.update_table("classify.csv", rows, COLUMNS, lambda r: (r["clip"], str(r.get("rank") or "")),
                         lambda r: r["clip"] in touched)
        record.write(cfg.out, rep.warnings, summary=shard.first)
    csv_path = cfg.out / "classify.csv"
    where = f" (share {shard.index + 1} of {shard.count})" if shard.split else ""
    rep.info(f"wrote {csv_path}{where}")
    n = len(paths) + len(inputs.problems)
    if failed:
        rep.notice(f"lmaczs: {failed} of {n} inputs failed{where}")
    ranks.gather(None)  # every rank is done: none exits while another still writes
    return ClassifyResult(rows, failed, n, csv_path)


def _whole_clip_batches(paths, model, batch_size: int, num_workers: int):
    """Batches of whole clips (``wave``: a list of [N] at the model's rate) for a fusion model."""
    from lmaczs_cli.data.loading import whole_clip_records

    for records in whole_clip_records(paths, model.sample_rate, batch_size, num_workers):
        yield {"path": [r["path"] for r in records], "error": [r["error"] for r in records],
               "wave": [r["wave"] for r in records]}


def _embed(model, batch: dict, ok: list[int], views: dict[str, dict]):
    """Embeddings [B, D], the encoder output and magnitude for the domain check (or None) of the
    usable clips: their first window, or (a fusion model, a list of whole clips) each clip as the
    model sees it, recording the fused view of the clips longer than one window in ``views``."""
    if not isinstance(batch["wave"], list):
        mag, _ = model.spectrogram(batch["wave"][ok].to(model.device))
        enc = model.encode(mag)
        return enc.embedding.float(), enc, mag
    embs = []
    for i in ok:
        wave = batch["wave"][i].to(model.device)
        if wave.shape[-1] <= model.window_samples:
            mag, _ = model.spectrogram(model.fit_window(wave).wave[None])
            embs.append(model.encode(mag).embedding.float())
            continue
        mag, _ = model.spectrogram(model.whole_clip_wave(wave)[None])
        embs.append(model.encode_fused(mag).embedding.float())
        views[batch["path"][i]] = model.fusion_record(int(wave.shape[-1]))
    return torch.cat(embs), None, None


@torch.no_grad()
def _top_k(model, batch: dict, text: torch.Tensor, prompts, k: int, precision: str,
           views: dict[str, dict]) -> list[dict]:
    from lmaczs_cli.runtime import autocast

    ok = [i for i, e in enumerate(batch["error"]) if e is None]
    if not ok:
        return []
    with autocast(model.device, precision):
        emb, enc, mag = _embed(model, batch, ok, views)
    sims = emb @ text.T
    # [B] bool, or None: the model cannot tell (fusion models cannot)
    known = None if enc is None else model.domain_check(emb, enc, mag)
    probs = torch.softmax(model.logit_scale * sims, dim=-1)
    top = probs.topk(k, dim=-1)
    rows = []
    for row_i, i in enumerate(ok):
        for r in range(k):
            j = int(top.indices[row_i, r])
            rows.append({
                "clip": batch["path"][i], "rank": r + 1, "label": prompts[j].label,
                "prompt": prompts[j].text, "similarity": float(sims[row_i, j]),
                "probability": float(top.values[row_i, r]), "status": "ok",
                "in_domain": None if known is None else int(known[row_i]),
            })
    return rows
