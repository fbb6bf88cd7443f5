"""Run an explain/baseline job: inputs -> engine -> WAV, PNG, mask, results.csv, JSON lines."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lmaczs_cli.cli.common import err, resolve_device
from lmaczs_cli.errors import UsageError
from lmaczs_cli.outputs import inside, print_json_line, read_csv, safe_name, write_csv_atomic

RESULT_COLUMNS = [
    "clip", "prompt", "label", "method", "rank", "similarity", "masked_similarity", "mask_mean",
    "wav", "residual_wav", "png", "mask", "status", "error",
]


@dataclass
class ExplainOptions:
    """Everything an explain or baseline run needs (already parsed by the CLI)."""

    inputs: list[Path]
    out: Path
    method: str
    prompt: list[str] | None = None
    prompts_file: Path | None = None
    labels: str | None = None
    prompt_template: str = "this is a sound of {label}"
    top_k: int | None = None
    files_from: str | None = None
    residual: bool = False
    save_mask: bool = False
    score: bool = True
    resume: bool = False
    fail_fast: bool = False
    method_options: dict[str, Any] = field(default_factory=dict)
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


def clip_slug(path: str) -> str:
    """Folder name of a clip: its sanitised stem plus a hash of its full path (no collisions)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return f"{safe_name(Path(path).stem, 50)}_{digest}"


def pair_dir(out: Path, clip: str, prompt: str, method: str) -> Path:
    """``out/<clip>/<prompt>/<method>/``, guaranteed inside ``out``."""
    rel = Path(clip_slug(clip)) / safe_name(prompt, 60) / safe_name(method, 30)
    return inside(out, rel)


def run_explain(opts: ExplainOptions) -> int:
    """Run the job; returns the number of failed inputs (the CLI exits 1 when > 0)."""
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.explaining import ExplainEngine, iter_clips
    from lmaczs_cli.inputs import collect_inputs
    from lmaczs_cli.pipeline import autocast, build_model, resolve_prompts
    from lmaczs_cli.progress import progress_bar

    torch.manual_seed(opts.seed)
    if opts.top_k is not None and opts.labels is None and not opts.prompts_file and not opts.prompt:
        raise UsageError("--top-k needs candidate prompts: --labels, --prompts-file or --prompt")
    paths = collect_inputs(opts.inputs, opts.files_from)
    prompts = resolve_prompts(opts.prompt, opts.prompts_file, opts.labels, opts.prompt_template)
    dev = resolve_device(opts.device)
    model = build_model(opts.clap, opts.clap_ckpt, opts.tokenizer_dir, dev, opts.seed)
    explainer = create_explainer(opts.method, model, **opts.method_options)
    text = model.embed_text([p.text for p in prompts])
    engine = ExplainEngine(model, explainer, text, batch_size=opts.batch_size, score=opts.score,
                           autocast=lambda: autocast(dev, opts.precision))
    k = min(opts.top_k or len(prompts), len(prompts))

    def choose(sims: torch.Tensor) -> list[int]:
        return sims.topk(k).indices.tolist() if opts.top_k else list(range(len(prompts)))

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    rows = [r for r in read_csv(csv_path) if r.get("method") != opts.method] if opts.resume else []
    done_rows = _done_rows(csv_path, opts.method) if opts.resume else {}
    todo = [p for p in paths if not _clip_done(str(p), done_rows, prompts, k, opts)]
    for p in paths:
        if p not in todo:
            rows.extend(done_rows[str(p)])
    if opts.resume and len(todo) < len(paths):
        err(f"lmaczs: resuming: {len(paths) - len(todo)} clips already done")
    failed = 0
    t0 = time.perf_counter()
    with progress_bar(len(todo), opts.method, opts.quiet) as advance:
        for records in iter_clips(todo, model.sample_rate, max(1, opts.batch_size // 2),
                                  opts.num_workers):
            good = []
            for r in records:
                if r["error"] is not None:
                    failed += 1
                    err(f"lmaczs: {r['error']}")
                    row = {"clip": r["path"], "method": opts.method, "status": "error",
                           "error": r["error"]}
                    rows.append(row)
                    _emit(row, opts)
                    if opts.fail_fast:
                        write_csv_atomic(csv_path, rows, RESULT_COLUMNS)
                        raise UsageError(f"stopping at the first bad input (--fail-fast): {r['error']}")
                else:
                    good.append(r)
            if good:
                for res in engine.run(good, choose):
                    new = _write_clip(model, res, prompts, opts)
                    rows.extend(new)
                    for row in new:
                        _emit(row, opts)
            write_csv_atomic(csv_path, rows, RESULT_COLUMNS)
            advance(len(records))
    write_csv_atomic(csv_path, rows, RESULT_COLUMNS)
    if not opts.quiet:
        n_ok = sum(1 for r in rows if r.get("status") == "ok")
        noun = "explanation" if n_ok == 1 else "explanations"
        err(f"lmaczs: {n_ok} {noun} in {time.perf_counter() - t0:.1f} s -> {csv_path}")
    if failed:
        err(f"lmaczs: {failed} of {len(paths)} inputs failed")
    return failed


def _emit(row: dict, opts: ExplainOptions) -> None:
    if opts.json_out:
        print_json_line({k: v for k, v in row.items() if v not in (None, "")})


def _done_rows(csv_path: Path, method: str) -> dict[str, list[dict]]:
    done: dict[str, list[dict]] = {}
    for r in read_csv(csv_path):
        if r.get("method") == method and r.get("status") == "ok" and Path(r.get("wav", "")).exists():
            done.setdefault(r["clip"], []).append(r)
    return done


def _clip_done(clip: str, done: dict[str, list[dict]], prompts, k: int, opts) -> bool:
    rows = done.get(clip, [])
    if opts.top_k:
        return len(rows) >= k
    return {p.text for p in prompts} <= {r["prompt"] for r in rows}


def _write_clip(model, res, prompts, opts: ExplainOptions) -> list[dict]:
    import numpy as np

    from lmaczs_cli.audio import write_wav
    from lmaczs_cli.explaining import resynthesise
    from lmaczs_cli.outputs import atomic_path
    from lmaczs_cli.render import render_map

    rows = []
    clip = res.record["path"]
    order = sorted(res.pairs, key=lambda pr: -float(res.similarities[pr.prompt_index]))
    for rank, pr in enumerate(order, start=1):
        pmt = prompts[pr.prompt_index]
        d = pair_dir(opts.out, clip, pmt.text, opts.method)
        d.mkdir(parents=True, exist_ok=True)
        sr = int(res.record["orig_sample_rate"])
        mask = pr.mask
        wav = write_wav(d / "explanation.wav", resynthesise(model, res, mask), sr)
        resid = (write_wav(d / "residual.wav", resynthesise(model, res, 1 - mask), sr)
                 if opts.residual else None)
        npy = None
        if opts.save_mask:
            with atomic_path(d / "mask.npy", suffix=".part.npy") as tmp:
                np.save(tmp, mask.cpu().numpy().astype(np.float32))
            npy = d / "mask.npy"
        ms = "" if pr.masked_similarity is None else f", masked s~ = {pr.masked_similarity:.3f}"
        title = f'"{pmt.text[:80]}" — {opts.method}: s = {pr.similarity:.3f}{ms}'
        png = render_map(d / "map.png", res.magnitude.cpu().numpy(), mask.cpu().numpy(),
                         model.sample_rate, model.stft_config.hop_length, title)
        rows.append({
            "clip": clip, "prompt": pmt.text, "label": pmt.label, "method": opts.method,
            "rank": rank, "similarity": pr.similarity, "masked_similarity": pr.masked_similarity,
            "mask_mean": float(mask.mean()), "wav": str(wav),
            "residual_wav": str(resid) if resid else None, "png": str(png),
            "mask": str(npy) if npy else None, "status": "ok", "error": None,
        })
    return rows
