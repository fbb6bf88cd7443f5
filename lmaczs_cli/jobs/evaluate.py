"""The evaluate job (docs/method.md): clips x conditions x methods -> samples.csv, summary.csv.

Every summary number is a function of the per-sample rows: ``samples.csv``
keeps the raw probabilities behind each metric (P[c], P_in[c], P_out[c],
argmaxes, mask statistics), and ``summary.csv`` is ``metrics.summarise`` of them.
Under torchrun each rank evaluates every W-th clip and rank 0 merges the parts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE
from lmaczs_cli.data.registry import DataSelection
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.outputs import read_csv, write_csv_atomic
from lmaczs_cli.provenance import RunRecord, trust_warnings
from lmaczs_cli.runtime import RunOptions

METRICS = ["AI", "AD", "AG", "FF", "FidIn", "SPS", "COMP", "MM", "accuracy"]
GT_METRICS = ["EPG", "precision", "recall", "event_F1", "segment_F1"]
SAMPLE_COLUMNS = [
    "clip", "label", "condition", "method", "pred", "pred_label", "correct", "P_c", "P_in_c",
    "P_out_c", "argmax_in", "argmax_out", "similarity", "MM", "SPS", "COMP", "AI", "AD", "AG", "FF",
    "FidIn", "accuracy", "EPG", "precision", "recall", "in_domain", "status", "error",
    "run_id", "model", "checkpoint", "decoder", "mask_domain", "event_F1", "segment_F1", "method_options",
]
SUMMARY_COLUMNS = ["method", "condition", "metric", "mean", "ci_low", "ci_high", "n"]


@dataclass
class EvalConfig:
    """An evaluation: which clips, which methods and conditions, where to write."""

    data: DataSelection
    out: Path
    methods: list[str] = field(default_factory=lambda: ["lmaczs"])
    conditions: list[str] = field(default_factory=lambda: ["clean"])
    prompt_template: str = DEFAULT_TEMPLATE
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    resume: bool = False
    plots: bool = False
    #: ``"I/N"``: evaluate only this share of the clips (job arrays; torchrun ranks split it further)
    shard: str | None = None
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class EvalResult:
    """Sample rows, the summary (mean and 95% CI per method x condition x metric), failures."""

    rows: list[dict]
    summary: list[dict]
    failed: int
    seconds: float
    out: Path


def run_evaluate(cfg: EvalConfig, reporter: Reporter | None = None) -> EvalResult | None:
    """Run the evaluation; None on torchrun ranks other than 0 (rank 0 returns the merged result).

    ``samples.csv`` keeps the rows of earlier runs into the same ``--out``: this run's
    rows replace those with the same (clip, condition, method); with ``resume`` the
    finished ones are not recomputed. The summary covers every row of the table.
    """
    from lmaczs_cli.data.contamination import parse_condition
    from lmaczs_cli.data.prompts import check_template, label_prompts
    from lmaczs_cli.data.registry import select_items
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.models.registry import load_model
    from lmaczs_cli.outdir import OutDir, check_out_dir
    from lmaczs_cli.preflight import check_ready
    from lmaczs_cli.runtime import resolve_device, seed_everything
    from lmaczs_cli.sharding import current_shard, parse_shard

    rep, run = reporter or Reporter(), cfg.run
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    shard, (job, jobs) = current_shard(cfg.shard), parse_shard(cfg.shard)
    conditions = [parse_condition(c) for c in cfg.conditions]
    check_template(cfg.prompt_template)
    sel = select_items(cfg.data)
    if sel.missing:
        rep.info(f"lmaczs: {len(sel.missing)} files listed in the metadata are missing (skipped)")
    check_out_dir(cfg.out)
    check_ready("evaluate", run, cfg.methods, cfg.method_options)
    dev = resolve_device(run.device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    seed_everything(run.seed)
    model = load_model(run.clap, run.clap_ckpt, run.tokenizer_dir, dev, run.seed)
    from lmaczs_cli.jobs.text_embedding import embed_prompts

    prompts = label_prompts(sel.labels, cfg.prompt_template)
    explainers = {m: create_explainer(m, model, **cfg.method_options.get(m, {})) for m in cfg.methods}
    record = RunRecord("evaluate", model, explainers, cfg.method_options, run)
    for w in trust_warnings(model, run.precision) + trained_on_warnings(explainers, cfg.data):
        rep.warn(w)
    ev = _Evaluator(model, explainers, embed_prompts(model, prompts, rep).float(), sel.labels, run.precision,
                    cfg.plots, record)
    t0 = time.perf_counter()
    with OutDir(cfg.out) as out:
        sink = _Samples(out, rank, world, cfg.resume, record.made_alike, f"shard{job}." if jobs > 1 else "")
        mine = [(i, it) for i, it in enumerate(sel.items) if i % shard.count == shard.index]
        failed = _evaluate_all(ev, mine, sel.items, conditions, sink, cfg, rep)
        rows = sink.merge_ranks()
        if rows is not None:
            _trust_report([r for r in rows if r.get("run_id") == record.run_id], model, rep)
            data = {**vars(cfg.data), "data_root": str(cfg.data.data_root)}
            record.data["shard"] = shard.record()
            record.write(cfg.out, rep.warnings, {"data": data, "conditions": cfg.conditions},
                         summary=job == 0)
    if rows is None:
        return None
    return _finish(cfg, rows, ev.scatter, failed, time.perf_counter() - t0, rep)


def _trust_report(rows: list[dict], model, rep: Reporter) -> None:
    """Warn when the model is mostly wrong about the clips, or does not know them."""
    from lmaczs_cli.provenance import ACCURACY_FLOOR, domain_warning

    ok = [r for r in rows if r.get("status") == "ok"]
    clean = {r["clip"]: r.get("correct") for r in ok if r.get("condition") == "clean"}
    judged = [int(v) for v in clean.values() if v not in (None, "")]
    acc = sum(judged) / len(judged) if judged else 1.0
    if acc < ACCURACY_FLOOR:
        rep.warn(f"{model.name}'s zero-shot accuracy on these clips is {100 * acc:.0f} %"
                 f" (below {100 * ACCURACY_FLOOR:.0f} %): the faithfulness numbers explain a model that is "
                 "mostly wrong about them")
    warning = domain_warning({r["clip"]: r.get("in_domain") for r in ok}, model.name, "samples.csv")
    if warning:
        rep.warn(warning)


def trained_on_warnings(explainers: dict, data: DataSelection) -> list[str]:
    """One line per decoder that was trained on folds of the set it is now evaluated on."""
    from lmaczs_cli.data.registry import FOLD_SETS

    name = data.dataset.strip().lower()
    if name not in FOLD_SETS:
        return []
    evaluated = set(data.folds or FOLD_SETS[name])
    out = []
    for method, ex in explainers.items():
        for src in getattr(getattr(ex, "decoder", None), "trained_on", None) or []:
            seen = evaluated & set(src.get("folds") or []) if src.get("data") == name else set()
            if seen:
                folds = ",".join(map(str, sorted(seen)))
                out.append(f"{method}: its decoder was trained on {name} fold(s) {folds}, which this run "
                           "evaluates: those numbers are optimistic (use --folds to evaluate only folds it "
                           "has not seen)")
    return out


def _sample_key(r) -> tuple[str, str, str]:
    return (str(r.get("clip") or ""), str(r.get("condition") or ""), str(r.get("method") or ""))


class _Samples:
    """Where sample rows go: merged into samples.csv (one process) or this rank's part file,
    which rank 0 merges into samples.csv and removes when every rank is done."""

    def __init__(self, out, rank: int, world: int, resume: bool, alike=lambda row: True,
                 tag: str = "") -> None:
        self.out, self.rank, self.world, self.tag = out, rank, world, tag
        self.part = out.path / f"samples.{tag}rank{rank}.csv"
        old = read_csv(out.path / "samples.csv") + (read_csv(self.part) if world > 1 else [])
        # with --resume, rows made another way (model, checkpoint, decoder, mask domain, method identity)
        # are redone
        self.done = {_sample_key(r) for r in old if r.get("status") == "ok" and alike(r)} if resume else set()
        self.mine: list[dict] = read_csv(self.part) if world > 1 and resume else []

    def add(self, rows: list[dict]) -> None:
        if self.world == 1:
            self.out.update_table("samples.csv", rows, SAMPLE_COLUMNS, _sample_key)
        else:  # a rank's own file: written whole, so a killed rank leaves a consistent part
            keys = {_sample_key(r) for r in rows}
            self.mine = [r for r in self.mine if _sample_key(r) not in keys] + rows
            write_csv_atomic(self.part, self.mine, SAMPLE_COLUMNS)

    def merge_ranks(self) -> list[dict] | None:
        """The whole samples.csv after this run (None on ranks other than 0)."""
        if self.world == 1:
            return read_csv(self.out.path / "samples.csv")
        import torch.distributed as dist

        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group("gloo")
        dist.barrier()
        if owns:  # leave it: exiting with gloo's threads alive can abort the process
            dist.destroy_process_group()
        if self.rank != 0:
            return None
        parts = [self.out.path / f"samples.{self.tag}rank{r}.csv" for r in range(self.world)]
        rows = self.out.update_table("samples.csv", [x for p in parts for x in read_csv(p)],
                                     SAMPLE_COLUMNS, _sample_key)
        for p in parts:
            p.unlink(missing_ok=True)
        return rows


def _evaluate_all(ev: _Evaluator, mine: list[tuple[int, Any]], items: list, conditions: list,
                  sink: _Samples, cfg: EvalConfig, rep: Reporter) -> int:
    """Every (clip, condition) of this rank; rows go to ``sink`` after each batch."""
    from torch.utils.data import DataLoader

    from lmaczs_cli.data.loading import ClipDataset, collate_clips

    model, run = ev.model, cfg.run
    mk = dict(sample_rate=model.sample_rate, window_samples=model.window_samples, crop="start",
              fit=model.fit_window)
    ds = ClipDataset([it for _, it in mine], **mk)
    mixer = _Mixer(ClipDataset(items, **mk), items, model, run.seed)
    failed = 0
    with rep.progress(len(mine) * len(conditions), "evaluate") as advance:
        for cond in conditions:
            loader = DataLoader(ds, batch_size=run.batch_size, num_workers=run.num_workers,
                                collate_fn=collate_clips)
            for b0, batch in enumerate(loader):
                idx = [mine[b0 * run.batch_size + j][0] for j in range(len(batch["path"]))]
                new, good = [], []
                for j, e in enumerate(batch["error"]):
                    if e is not None:
                        failed += 1
                        rep.error(f"lmaczs: {e}")
                        new.append({"clip": batch["path"][j], "condition": str(cond), "status": "error",
                                    "error": e})
                    elif not all((batch["path"][j], str(cond), m) in sink.done for m in ev.explainers):
                        good.append(j)
                if good:
                    wave = torch.stack([mixer.apply(cond, batch["wave"][j], idx[j]) for j in good])
                    new += ev.batch(wave.to(model.device), [batch["path"][j] for j in good],
                                    [batch["label"][j] for j in good], str(cond),
                                    [items[idx[j]] for j in good], sink.done)
                for r in new:
                    rep.result({k: v for k, v in r.items() if v is not None})
                sink.add(new)
                advance(len(batch["path"]))
    return failed


class _Mixer:
    """Applies a condition to a clip, fetching the partner clip (another one of the set, or speech)."""

    def __init__(self, full_ds, items: list, model, seed: int) -> None:
        self.full_ds, self.items, self.model, self.seed = full_ds, items, model, seed
        self._speech: dict[str, list] = {}

    def apply(self, cond, wave: torch.Tensor, index: int) -> torch.Tensor:
        from lmaczs_cli.audio import load_audio
        from lmaczs_cli.data.contamination import noise_generator, pick_file, pick_partner

        other = None
        if cond.kind == "esc50-mix":
            other = self.full_ds[pick_partner(index, [it.label for it in self.items], self.seed)]["wave"]
        elif cond.kind == "speech":
            files = self._speech.setdefault(str(cond), cond.speech_files())
            f = files[pick_file(index, len(files), self.seed)]
            other = self.model.fit_window(load_audio(f, self.model.sample_rate).wave).wave
        return cond.apply(wave, other=other, generator=noise_generator(index, self.seed))


class _Evaluator:
    """Metrics of every method for batches of (possibly contaminated) clips."""

    def __init__(self, model, explainers: dict, text: torch.Tensor, labels: list[str], precision: str,
                 plots: bool, record=None) -> None:
        self.model, self.explainers, self.text, self.labels = model, explainers, text, labels
        self.precision, self.plots, self.record = precision, plots, record
        self.label_idx = {lab: i for i, lab in enumerate(labels)}
        self.scatter: list[dict] = []
        self.seen: dict[str, int] = {}  # clips per method so far (spreads the scatter's extra prompts)

    def _ac(self):
        from lmaczs_cli.runtime import autocast

        return autocast(self.model.device, self.precision)

    @torch.no_grad()
    def probs(self, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-shot probabilities and similarities [B, C] of magnitudes."""
        with self._ac():
            emb = self.model.encode(mag).embedding.float()
        sims = emb @ self.text.T
        return torch.softmax(self.model.logit_scale * sims, dim=-1), sims

    def batch(self, wave: torch.Tensor, paths: list[str], labels: list, cond: str, items: list,
              done: set) -> list[dict]:
        """Rows for every method and clip of the batch not yet in ``done``."""
        with torch.no_grad(), self._ac():
            mag, _ = self.model.spectrogram(wave)
            enc = self.model.encode(mag)
        sims = enc.embedding.float() @ self.text.T
        p = torch.softmax(self.model.logit_scale * sims, dim=-1)
        known = self.model.domain_check(enc.embedding, enc, mag)
        rows = []
        for name, ex in self.explainers.items():
            keep = [i for i in range(len(paths)) if (paths[i], cond, name) not in done]
            if not keep:
                continue
            new = self._method_rows(name, ex, keep, mag, enc, p, sims, paths, labels, cond, items)
            for r, i in zip(new, keep, strict=True):
                r["in_domain"] = None if known is None else int(known[i])
                r.update(self.record.row_fields(name) if self.record else {})
            rows += new
        return rows

    def _method_rows(self, name, ex, keep, mag, enc, p, sims, paths, labels, cond, items) -> list[dict]:
        from lmaczs_cli import metrics as M

        c = p.argmax(-1)
        k = torch.tensor(keep, device=mag.device)
        enc_k = type(enc)(enc.embedding[k], [h[k] for h in enc.hidden])
        with self._ac():
            m = ex.masks(self.model, mag[k], self.text[c[k]], encoded=enc_k)
        p_in, _ = self.probs(m * mag[k])
        p_out, _ = self.probs((1 - m) * mag[k])
        f = M.faithfulness(p[k].double(), p_in.double(), p_out.double(), c[k])
        sps, comp, mm = M.sparseness(m), M.complexity(m), M.mask_mean(m)
        gt = _ground_truth([items[i] for i in keep], self.labels, c[k], m, mag[k])
        spans = _time_spans([items[i] for i in keep], self.labels, c[k], m, mag[k], name, self.model)
        rows = []
        for r, i in enumerate(keep):
            ci, lab = int(c[i]), self.label_idx.get(labels[i])
            row = {
                "clip": paths[i], "label": labels[i] if lab is not None else None, "condition": cond,
                "method": name, "pred": ci, "pred_label": self.labels[ci],
                "correct": None if lab is None else int(ci == lab), "P_c": float(p[i, ci]),
                "P_in_c": float(p_in[r, ci]), "P_out_c": float(p_out[r, ci]),
                "argmax_in": int(p_in[r].argmax()), "argmax_out": int(p_out[r].argmax()),
                "similarity": float(sims[i, ci]), "MM": float(mm[r]), "SPS": float(sps[r]),
                "COMP": float(comp[r]), "status": "ok", "error": None,
                **{key: float(v[r]) for key, v in f.items()}, **(gt[r] if gt else {}),
                **(spans[r] if spans else {}),
            }
            row["accuracy"] = row["correct"]
            rows.append(row)
        if self.plots:
            self.scatter += _scatter_points(self, ex, name, mag[k], enc_k, sims[k], cond, m)
        return rows


def _ground_truth(items: list, labels: list[str], c, masks, mag) -> list[dict] | None:
    """Localisation against ground truth (synthetic world): EPG, precision, recall of the predicted class."""
    from lmaczs_cli import metrics as M

    gts = [it.meta.get("gt_masks") for it in items]
    if not any(gts):
        return None
    out = []
    for r, path in enumerate(gts):
        g = _gt_mask(path, labels[int(c[r])], tuple(masks.shape[1:]))
        if g is None:  # no mask, class absent from the scene, or made for another model's grid
            out.append({})
            continue
        g = g.to(masks.device)
        epg = M.energy_pointing_game(masks[r : r + 1], mag[r : r + 1], g[None])
        pr = M.mask_precision_recall(masks[r : r + 1], g[None], energy=mag[r : r + 1], threshold=None)
        out.append({"EPG": float(epg[0]), "precision": float(pr["precision"][0]),
                    "recall": float(pr["recall"][0])})
    return out


def _time_spans(items: list, labels: list[str], c, masks, mag, method: str, model) -> list[dict] | None:
    """Time spans against strong labels (URBAN-SED, AudioGrounding, a strong-label CSV): per clip,
    event- and segment-based F1 (``sed_eval``) of the predicted class's segments within the
    window explained, against that class's reference events there (none when it is absent)."""
    from lmaczs_cli import events as ev

    if not any(it.meta.get("events") is not None for it in items):
        return None
    hop, sr = model.stft_config.hop_length, model.sample_rate
    threshold, gap = ev.decoding_for(method)
    out = []
    for r, it in enumerate(items):
        ref_all = it.meta.get("events")
        if ref_all is None:
            out.append({})
            continue
        label = labels[int(c[r])]
        m, x = masks[r].detach().float().cpu().numpy(), mag[r].detach().float().cpu().numpy()
        window = x.shape[-1] * hop / sr
        found = ev.segments(ev.activity(m, x), hop / sr, threshold, min_gap=gap, duration=window)
        ref = [(it.path, on, min(off, window), label) for on, off, lab in ref_all
               if lab.casefold() == label.casefold() and on < window]
        est = [(it.path, s.onset, s.offset, label) for s in found]
        if not ref and not est:
            out.append({})  # nothing to find and nothing found: F1 is undefined
            continue
        counts = ev.SedScorer([label]).add(ref, est)
        out.append({"event_F1": ev.f1(*counts[0]), "segment_F1": ev.f1(*counts[1])})
    return out


def _gt_mask(path: str | None, label: str, shape: tuple) -> torch.Tensor | None:
    if not path:
        return None
    with np.load(path) as z:
        if label not in z.files:
            return None
        g = torch.from_numpy(z[label]).bool()
    return g if tuple(g.shape) == shape else None


def _scatter_points(ev: _Evaluator, ex, name: str, mag, enc, sims, cond: str, pred_masks) -> list[dict]:
    """Mask mean vs similarity (paper Fig. 5): every clip's predicted prompt (its mask is already
    there), plus one other prompt on every fifth clip (every tenth for gradient methods), so the
    plot adds under a tenth to a run of a few hundred clips (benchmarks/bench_maps.py)."""
    g = torch.Generator().manual_seed(0)
    top = sims.argmax(-1)
    pts = [{"method": name, "condition": cond, "similarity": float(sims[j, top[j]]),
            "mask_mean": float(pred_masks[j].mean())} for j in range(mag.shape[0])]
    every, start = (10 if ex.needs_grad else 5), ev.seen.get(name, 0)
    ev.seen[name] = start + mag.shape[0]
    chosen = [j for j in range(mag.shape[0]) if (start + j) % every == 0]
    if not chosen or ev.text.shape[0] < 2:
        return pts
    other = [int((top[j] + 1 + torch.randint(ev.text.shape[0] - 1, (1,), generator=g)) % ev.text.shape[0])
             for j in chosen]
    idx = torch.tensor(chosen, device=mag.device)
    enc_o = type(enc)(enc.embedding[idx], [h[idx] for h in enc.hidden])
    with ev._ac():
        m = ex.masks(ev.model, mag[idx], ev.text[other], encoded=enc_o)
    pts += [{"method": name, "condition": cond, "similarity": float(sims[j, o]),
             "mask_mean": float(m[q].mean())} for q, (j, o) in enumerate(zip(chosen, other, strict=True))]
    return pts


def summary_rows(rows: list[dict]) -> list[dict]:
    """``summary.csv`` rows (mean and bootstrap 95% CI per method x condition x metric).

    Rows are put in a canonical order (method, condition, clip) first, so the bootstrap
    intervals do not depend on the order the rows were produced in (e.g. by N ranks).
    """
    from lmaczs_cli.metrics import summarise

    ok = sorted((r for r in rows if r.get("status") == "ok"),
                key=lambda r: (str(r.get("method")), str(r.get("condition")), str(r.get("clip"))))
    keys = METRICS + [m for m in GT_METRICS if any(r.get(m) not in (None, "") for r in ok)]
    return summarise(ok, keys, ["method", "condition"])


def _finish(cfg: EvalConfig, rows: list[dict], scatter: list[dict], failed: int, seconds: float,
            rep: Reporter) -> EvalResult:
    summary = summary_rows(rows)
    write_csv_atomic(cfg.out / "summary.csv", summary, SUMMARY_COLUMNS)
    if cfg.plots:
        from lmaczs_cli.render import render_scatter, render_summary_bars

        render_summary_bars(cfg.out / "summary.png", summary)
        if scatter:
            write_csv_atomic(cfg.out / "mask_vs_similarity.csv", scatter,
                             ["method", "condition", "similarity", "mask_mean"])
            render_scatter(cfg.out / "mask_vs_similarity.png", scatter)
    n = sum(1 for r in rows if r.get("status") == "ok")
    rep.info(f"lmaczs: {n} sample rows in {seconds:.1f} s -> {cfg.out / 'samples.csv'}, "
             f"{cfg.out / 'summary.csv'}")
    return EvalResult(rows, summary, failed, seconds, cfg.out)
