"""The explain/baseline job: inputs x prompts x methods -> WAV, PNG, mask files and results.csv.

Built on the public API (:func:`lmaczs_cli.api.explain_many` and
:meth:`Explanation.save`): this module only adds inputs, resume, output
folders and the results table.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE, Prompt
from lmaczs_cli.errors import UsageError
from lmaczs_cli.outputs import inside, read_csv, safe_name, write_csv_atomic
from lmaczs_cli.reporting import Reporter
from lmaczs_cli.runtime import RunOptions

RESULT_COLUMNS = [
    "clip", "prompt", "label", "method", "rank", "similarity", "masked_similarity", "mask_mean",
    "wav", "residual_wav", "png", "mask", "status", "error",
]


@dataclass
class ExplainConfig:
    """Everything an explain or baseline run needs."""

    inputs: list[Path]
    out: Path
    methods: list[str] = field(default_factory=lambda: ["lmaczs"])
    prompt: list[str] | None = None
    prompts_file: Path | None = None
    labels: str | None = None
    prompt_template: str = DEFAULT_TEMPLATE
    top_k: int | None = None
    files_from: str | None = None
    residual: bool = False
    save_mask: bool = False
    score: bool = True
    resume: bool = False
    fail_fast: bool = False
    #: per-method factory options, e.g. {"lmaczs": {"decoder": PATH}, "ig": {"steps": 50}}
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class ExplainResult:
    """What a run did: every row of results.csv, how many inputs failed, where the table is."""

    rows: list[dict]
    failed: int
    n_inputs: int
    csv_path: Path
    seconds: float

    @property
    def explained(self) -> int:
        return sum(1 for r in self.rows if r.get("status") == "ok")


def clip_slug(path: str) -> str:
    """Folder name of a clip: its sanitised stem plus a hash of its full path (no collisions)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return f"{safe_name(Path(path).stem, 50)}_{digest}"


def pair_dir(out: Path, clip: str, prompt: str, method: str) -> Path:
    """``out/<clip>/<prompt>/<method>/``, guaranteed inside ``out``."""
    rel = Path(clip_slug(clip)) / safe_name(prompt, 60) / safe_name(method, 30)
    return inside(out, rel)


def run_explain(cfg: ExplainConfig, reporter: Reporter | None = None) -> ExplainResult:
    """Explain every input with every method; rows are also reported as they are written."""
    from lmaczs_cli.api import load_explainer, load_model
    from lmaczs_cli.data.prompts import resolve_prompts
    from lmaczs_cli.inputs import collect_inputs
    from lmaczs_cli.runtime import seed_everything

    rep = reporter or Reporter()
    run = cfg.run
    if cfg.top_k is not None and cfg.labels is None and not cfg.prompts_file and not cfg.prompt:
        raise UsageError("--top-k needs candidate prompts: --labels, --prompts-file or --prompt")
    paths = collect_inputs(cfg.inputs, cfg.files_from)
    prompts = resolve_prompts(cfg.prompt, cfg.prompts_file, cfg.labels, cfg.prompt_template)
    seed_everything(run.seed)
    model = load_model(run.clap, run.clap_ckpt, tokenizer_dir=run.tokenizer_dir, device=run.device,
                       seed=run.seed)
    explainers = [load_explainer(m, model, **cfg.method_options.get(m, {})) for m in cfg.methods]
    cfg.out.mkdir(parents=True, exist_ok=True)
    table = _Table(cfg.out / "results.csv", cfg, prompts)
    failed: set[str] = set()
    t0 = time.perf_counter()
    for ex in explainers:
        failed |= _explain_with(ex, paths, prompts, cfg, table, rep)
    table.flush()
    result = ExplainResult(table.rows, len(failed), len(paths), table.path, time.perf_counter() - t0)
    noun = "explanation" if result.explained == 1 else "explanations"
    rep.info(f"lmaczs: {result.explained} {noun} in {result.seconds:.1f} s -> {table.path}")
    if failed:
        rep.notice(f"lmaczs: {len(failed)} of {len(paths)} inputs failed")
    return result


def _explain_with(explainer, paths: list[Path], prompts: list[Prompt], cfg: ExplainConfig,
                  table: _Table, rep: Reporter) -> set[str]:
    """Run one method over the inputs not yet done; returns the inputs that failed."""
    from lmaczs_cli.api import explain_many

    run, method = cfg.run, explainer.name
    todo = table.todo(paths, method)
    if len(todo) < len(paths):
        rep.info(f"lmaczs: resuming: {len(paths) - len(todo)} clips already done ({method})")
    failed: set[str] = set()
    with rep.progress(len(todo), method) as advance:
        for res in explain_many(explainer, todo, prompts, top_k=cfg.top_k, batch_size=run.batch_size,
                                num_workers=run.num_workers, score=cfg.score, precision=run.precision):
            if res.error is not None:
                failed.add(res.clip)
                rep.error(f"lmaczs: {res.error}")
                new = [{"clip": res.clip, "method": method, "status": "error", "error": res.error}]
            else:
                new = [_save(e, cfg) for e in res.explanations]
            table.add(new)
            for row in new:
                rep.result({k: v for k, v in row.items() if v not in (None, "")})
            advance(1)
            if res.error is not None and cfg.fail_fast:
                table.flush()
                raise UsageError(f"stopping at the first bad input (--fail-fast): {res.error}")
    return failed


def _save(e, cfg: ExplainConfig) -> dict:
    paths = e.save(pair_dir(cfg.out, e.clip, e.prompt, e.method), residual=cfg.residual,
                   save_mask=cfg.save_mask)
    return {
        "clip": e.clip, "prompt": e.prompt, "label": e.label, "method": e.method, "rank": e.rank,
        "similarity": e.similarity, "masked_similarity": e.masked_similarity, "mask_mean": e.mask_mean,
        "wav": str(paths["wav"]), "residual_wav": _str(paths.get("residual_wav")), "png": str(paths["png"]),
        "mask": _str(paths.get("mask")), "status": "ok", "error": None,
    }


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


class _Table:
    """results.csv: rows kept from earlier runs (with --resume) plus this run's, written atomically."""

    def __init__(self, path: Path, cfg: ExplainConfig, prompts: list[Prompt]) -> None:
        self.path = path
        self.cfg = cfg
        self.prompts = prompts
        self.k = min(cfg.top_k or len(prompts), len(prompts))
        old = read_csv(path) if cfg.resume else []
        self.done = {m: _done_rows(old, m) for m in cfg.methods}
        self.rows = [r for r in old if r.get("method") not in cfg.methods]

    def todo(self, paths: list[Path], method: str) -> list[Path]:
        done = self.done.get(method, {})
        out = []
        for p in paths:
            if self._clip_done(done.get(str(p), [])):
                self.rows.extend(done[str(p)])
            else:
                out.append(p)
        return out

    def _clip_done(self, rows: list[dict]) -> bool:
        if self.cfg.top_k:
            return len(rows) >= self.k
        return bool(rows) and {p.text for p in self.prompts} <= {r["prompt"] for r in rows}

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        self.flush()

    def flush(self) -> None:
        write_csv_atomic(self.path, self.rows, RESULT_COLUMNS)


def _done_rows(rows: list[dict], method: str) -> dict[str, list[dict]]:
    done: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("method") == method and r.get("status") == "ok" and Path(r.get("wav", "")).exists():
            done.setdefault(r["clip"], []).append(r)
    return done
