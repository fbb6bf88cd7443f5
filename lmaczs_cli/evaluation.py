"""Faithfulness evaluation (METHOD.md §4, §6): clips x conditions x methods -> samples.csv, summary.csv.

Every summary number is a function of the per-sample rows: ``samples.csv``
keeps the raw probabilities behind each metric (P[c], P_in[c], P_out[c],
argmaxes, mask statistics), and ``summary.csv`` is ``metrics.summarise`` of them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmaczs_cli.cli.common import err, resolve_device
from lmaczs_cli.errors import UsageError
from lmaczs_cli.outputs import print_json_line, read_csv, write_csv_atomic

METRICS = ["AI", "AD", "AG", "FF", "FidIn", "SPS", "COMP", "MM", "accuracy"]
GT_METRICS = ["EPG", "precision", "recall"]
SAMPLE_COLUMNS = [
    "clip", "label", "condition", "method", "pred", "pred_label", "correct", "P_c", "P_in_c",
    "P_out_c", "argmax_in", "argmax_out", "similarity", "MM", "SPS", "COMP", "AI", "AD", "AG", "FF",
    "FidIn", "accuracy", "EPG", "precision", "recall", "status", "error",
]
SUMMARY_COLUMNS = ["method", "condition", "metric", "mean", "ci_low", "ci_high", "n"]


@dataclass
class EvalOptions:
    """A parsed ``lmaczs evaluate`` invocation."""

    dataset: str
    data_root: Path | None
    out: Path
    methods: list[str]
    conditions: list[str] = field(default_factory=lambda: ["clean"])
    folds: list[int] | None = None
    esc10: bool = False
    split: str | None = None
    max_samples: int | None = None
    prompt_template: str = "this is a sound of {label}"
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    resume: bool = False
    plots: bool = False
    clap: str = "small"
    clap_ckpt: str | None = None
    tokenizer_dir: Path | None = None
    device: str = "auto"
    batch_size: int = 8
    num_workers: int = 0
    seed: int = 0
    precision: str = "fp32"
    quiet: bool = False
    json_out: bool = False


def load_items(opts: EvalOptions):
    """Items and the ordered class-label list of the evaluated set."""
    from lmaczs_cli.data.labels import load_labels
    from lmaczs_cli.data.registry import load_dataset

    if opts.data_root is None:
        raise UsageError(f"--dataset {opts.dataset} needs --data-root")
    report = load_dataset(opts.dataset, opts.data_root, split=opts.split, folds=opts.folds,
                          esc10=opts.esc10)
    if report.missing:
        err(f"lmaczs: {len(report.missing)} files listed in the metadata are missing (skipped)")
    items = list(report.items)
    if opts.dataset in ("esc50", "us8k"):
        labels = load_labels("esc10" if opts.esc10 else opts.dataset)
    elif opts.dataset == "synth":
        from lmaczs_cli.data.synthetic import class_names

        labels = class_names()
    else:
        labels = sorted({it.label for it in items if it.label})
    if not labels:
        raise UsageError(f"--dataset {opts.dataset}: the items carry no class labels to evaluate")
    if opts.max_samples is not None and len(items) > opts.max_samples:
        order = np.random.default_rng(opts.seed).permutation(len(items))[: opts.max_samples]
        items = [items[i] for i in sorted(order)]
    return items, labels


def _shard(items: list, rank: int, world: int) -> list[tuple[int, Any]]:
    return [(i, it) for i, it in enumerate(items) if i % world == rank]


def run_evaluate(opts: EvalOptions) -> int:
    """Run the evaluation; returns the number of failed clips."""
    from torch.utils.data import DataLoader

    from lmaczs_cli.data.contamination import noise_generator, parse_condition, pick_file, pick_partner
    from lmaczs_cli.data.loading import ClipDataset, collate_clips
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.pipeline import autocast, build_model
    from lmaczs_cli.progress import progress_bar

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    conditions = [parse_condition(c) for c in opts.conditions]
    items, labels = load_items(opts)
    dev = resolve_device(opts.device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    torch.manual_seed(opts.seed)
    model = build_model(opts.clap, opts.clap_ckpt, opts.tokenizer_dir, dev, opts.seed)
    prompts = [opts.prompt_template.format(label=lab) for lab in labels]
    text = model.embed_text(prompts).float()
    label_idx = {lab: i for i, lab in enumerate(labels)}
    explainers = {m: create_explainer(m, model, **opts.method_options.get(m, {})) for m in opts.methods}
    opts.out.mkdir(parents=True, exist_ok=True)
    part = opts.out / ("samples.csv" if world == 1 else f"samples.rank{rank}.csv")
    rows = read_csv(part) if opts.resume else []
    done = {(r["clip"], r["condition"], r["method"]) for r in rows}
    mine = _shard(items, rank, world)
    ds = ClipDataset([it for _, it in mine], model.sample_rate, model.window_samples, crop="start",
                     fit=model.fit_window)
    full_ds = ClipDataset(items, model.sample_rate, model.window_samples, crop="start",
                          fit=model.fit_window)

    def ac():
        return autocast(dev, opts.precision)

    scatter: list[dict] = []
    failed = 0
    t0 = time.perf_counter()
    n_units = len(mine) * len(conditions)
    with progress_bar(n_units, "evaluate", opts.quiet) as advance:
        for cond in conditions:
            speech = cond.speech_files() if cond.kind == "speech" else []
            loader = DataLoader(ds, batch_size=opts.batch_size, num_workers=opts.num_workers,
                                collate_fn=collate_clips)
            for b0, batch in enumerate(loader):
                idx_global = [mine[b0 * opts.batch_size + j][0] for j in range(len(batch["path"]))]
                good = []
                for j, e in enumerate(batch["error"]):
                    if e is not None:
                        failed += 1
                        err(f"lmaczs: {e}")
                        rows.append({"clip": batch["path"][j], "condition": str(cond), "status": "error",
                                     "error": e})
                    elif all((batch["path"][j], str(cond), m) in done for m in opts.methods):
                        pass
                    else:
                        good.append(j)
                if good:
                    waves = []
                    for j in good:
                        gi = idx_global[j]
                        w = batch["wave"][j]
                        other = None
                        if cond.kind == "esc50-mix":
                            other = full_ds[pick_partner(gi, [it.label for it in items], opts.seed)]["wave"]
                        elif cond.kind == "speech":
                            f = speech[pick_file(gi, len(speech), opts.seed)]
                            from lmaczs_cli.audio import load_audio

                            other = model.fit_window(load_audio(f, model.sample_rate).wave).wave
                        waves.append(cond.apply(w, other=other, generator=noise_generator(gi, opts.seed)))
                    wave = torch.stack(waves).to(dev)
                    new, pts = _evaluate_batch(
                        model, explainers, text, wave, [batch["path"][j] for j in good],
                        [label_idx.get(batch["label"][j]) for j in good], labels, str(cond), done, ac,
                        [items[idx_global[j]] for j in good], opts.plots,
                    )
                    rows.extend(new)
                    scatter.extend(pts)
                    if opts.json_out:
                        for r in new:
                            print_json_line({k: v for k, v in r.items() if v is not None})
                write_csv_atomic(part, rows, SAMPLE_COLUMNS)
                advance(len(batch["path"]))
    write_csv_atomic(part, rows, SAMPLE_COLUMNS)
    if world > 1:
        rows = _gather_parts(opts.out, world, rank)
        if rows is None:
            return failed
    _finish(opts, rows, scatter, time.perf_counter() - t0)
    return failed


@torch.no_grad()
def _probs(model, mag, text, ac) -> tuple[torch.Tensor, torch.Tensor]:
    with ac():
        emb = model.encode(mag).embedding.float()
    sims = emb @ text.T
    return torch.softmax(model.logit_scale * sims, dim=-1), sims


def _evaluate_batch(model, explainers, text, wave, paths, label_ids, labels, cond, done, ac, items,
                    plots) -> tuple[list[dict], list[dict]]:
    from lmaczs_cli import metrics as M

    with torch.no_grad(), ac():
        mag, _ = model.spectrogram(wave)
        enc = model.encode(mag)
    sims = enc.embedding.float() @ text.T
    p = torch.softmax(model.logit_scale * sims, dim=-1)
    c = p.argmax(-1)
    rows, pts = [], []
    for name, ex in explainers.items():
        keep = [i for i in range(len(paths)) if (paths[i], cond, name) not in done]
        if not keep:
            continue
        k = torch.tensor(keep, device=mag.device)
        enc_k = type(enc)(enc.embedding[k], [h[k] for h in enc.hidden])
        with torch.set_grad_enabled(bool(getattr(ex, "needs_grad", False))), ac():
            m = ex.masks(model, mag[k], text[c[k]], encoded=enc_k).float().detach()
        p_in, _ = _probs(model, m * mag[k], text, ac)
        p_out, _ = _probs(model, (1 - m) * mag[k], text, ac)
        f = M.faithfulness(p[k].double(), p_in.double(), p_out.double(), c[k])
        sps, comp, mm = M.sparseness(m), M.complexity(m), M.mask_mean(m)
        gt = _ground_truth(items, keep, labels, c[k], m, mag[k])
        for r, i in enumerate(keep):
            ci = int(c[i])
            lab = label_ids[i]
            row = {
                "clip": paths[i], "label": labels[lab] if lab is not None else None, "condition": cond,
                "method": name, "pred": ci, "pred_label": labels[ci],
                "correct": None if lab is None else int(ci == lab), "P_c": float(p[i, ci]),
                "P_in_c": float(p_in[r, ci]), "P_out_c": float(p_out[r, ci]),
                "argmax_in": int(p_in[r].argmax()), "argmax_out": int(p_out[r].argmax()),
                "similarity": float(sims[i, ci]), "MM": float(mm[r]), "SPS": float(sps[r]),
                "COMP": float(comp[r]), "status": "ok", "error": None,
                **{key: float(v[r]) for key, v in f.items()},
                **(gt[r] if gt else {}),
            }
            row["accuracy"] = row["correct"]
            rows.append(row)
        if plots:
            pts.extend(_scatter_points(model, ex, name, mag[k], enc_k, text, sims[k], cond, ac))
    return rows, pts


def _ground_truth(items, keep, labels, c, masks, mag) -> list[dict] | None:
    """Localisation against ground truth (synthetic world): EPG, precision, recall of the predicted class."""
    from lmaczs_cli import metrics as M

    gts = [items[i].meta.get("gt_masks") for i in keep]
    if not any(gts):
        return None
    out = []
    for r, path in enumerate(gts):
        lab = labels[int(c[r])]
        if not path:
            out.append({})
            continue
        with np.load(path) as z:
            if lab not in z.files:
                out.append({})  # predicted class absent from the scene: nothing to localise
                continue
            g = torch.from_numpy(z[lab]).to(masks.device).bool()
        if tuple(g.shape) != tuple(masks.shape[1:]):
            out.append({})  # ground truth made for another model's grid (e.g. synth scenes on LAION)
            continue
        epg = M.energy_pointing_game(masks[r : r + 1], mag[r : r + 1], g[None])
        pr = M.mask_precision_recall(masks[r : r + 1], g[None], energy=mag[r : r + 1], threshold=None)
        out.append({"EPG": float(epg[0]), "precision": float(pr["precision"][0]),
                    "recall": float(pr["recall"][0])})
    return out


def _scatter_points(model, ex, name, mag, enc, text, sims, cond, ac, n_other: int = 4) -> list[dict]:
    """Mask mean vs similarity for the top prompt and a few others per clip (paper Fig. 5)."""
    g = torch.Generator().manual_seed(0)
    pts = []
    for j in range(mag.shape[0]):
        others = torch.randperm(text.shape[0], generator=g)[:n_other].tolist()
        cand = list(dict.fromkeys([int(sims[j].argmax())] + others))
        idx = torch.tensor([j] * len(cand), device=mag.device)
        enc_j = type(enc)(enc.embedding[idx], [h[idx] for h in enc.hidden])
        with torch.set_grad_enabled(bool(getattr(ex, "needs_grad", False))), ac():
            m = ex.masks(model, mag[idx], text[cand], encoded=enc_j).float().detach()
        for q, pi in enumerate(cand):
            pts.append({"method": name, "condition": cond, "similarity": float(sims[j, pi]),
                        "mask_mean": float(m[q].mean())})
    return pts


def _gather_parts(out: Path, world: int, rank: int) -> list[dict] | None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
    if rank != 0:
        return None
    rows: list[dict] = []
    for r in range(world):
        rows.extend(read_csv(out / f"samples.rank{r}.csv"))
    write_csv_atomic(out / "samples.csv", rows, SAMPLE_COLUMNS)
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """``summary.csv`` rows (mean and bootstrap 95% CI per method x condition x metric)."""
    from lmaczs_cli.metrics import summarise

    ok = [r for r in rows if r.get("status") == "ok"]
    keys = METRICS + [m for m in GT_METRICS if any(r.get(m) not in (None, "") for r in ok)]
    return summarise(ok, keys, ["method", "condition"])


def _finish(opts: EvalOptions, rows: list[dict], scatter: list[dict], seconds: float) -> None:
    summary = summary_rows(rows)
    write_csv_atomic(opts.out / "summary.csv", summary, SUMMARY_COLUMNS)
    if scatter:
        write_csv_atomic(opts.out / "mask_vs_similarity.csv", scatter,
                         ["method", "condition", "similarity", "mask_mean"])
        from lmaczs_cli.render import render_scatter

        render_scatter(opts.out / "mask_vs_similarity.png", scatter)
    if not opts.quiet:
        _print_summary(summary)
        n = sum(1 for r in rows if r.get("status") == "ok")
        err(f"lmaczs: {n} sample rows in {seconds:.1f} s -> {opts.out / 'samples.csv'}, "
            f"{opts.out / 'summary.csv'}")


def _print_summary(summary: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    from lmaczs_cli.cli.common import use_color

    metrics = list(dict.fromkeys(r["metric"] for r in summary))
    table = Table("method", "condition", *metrics, title="faithfulness (mean, 95% CI)")
    groups: dict[tuple, dict] = {}
    for r in summary:
        groups.setdefault((r["method"], r["condition"]), {})[r["metric"]] = r
    for (meth, cond), d in groups.items():
        cells = []
        for m in metrics:
            r = d.get(m)
            if r is None or not np.isfinite(float(r["mean"])):
                cells.append("-")
            else:
                cells.append(f"{float(r['mean']):.3g} ±{(float(r['ci_high']) - float(r['ci_low'])) / 2:.2g}")
        table.add_row(meth, cond, *cells)
    Console(stderr=True, no_color=not use_color(), width=200).print(table)
