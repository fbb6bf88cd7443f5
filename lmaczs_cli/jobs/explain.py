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
from lmaczs_cli.inputs import Inputs
from lmaczs_cli.jobs.events_table import span_fields, update_events
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.outputs import inside, read_csv, safe_name
from lmaczs_cli.provenance import RunRecord, trust_warnings
from lmaczs_cli.runtime import RunOptions
from lmaczs_cli.sharding import Ranks, Shard, current_shard
from lmaczs_cli.writers import OrderedWriters

RESULT_COLUMNS = [
    "clip", "prompt", "label", "method", "rank", "similarity", "masked_similarity", "mask_mean",
    "faithful", "in_domain", "wav", "residual_wav", "png", "mask", "status", "error", "warning",
    "run_id", "model", "checkpoint", "decoder", "mask_domain", "method_options",
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
    #: ``"I/N"``: explain only every N-th input from the I-th (job arrays; torchrun ranks split it further)
    shard: str | None = None
    #: with no LMAC-ZS decoder for the model: refuse (exit 2) instead of explaining per clip
    require_decoder: bool = False
    #: draw map.png for every explanation (off: tables and WAVs only)
    maps: bool = True
    #: threads writing WAVs and maps while the model works (0: in the model's thread)
    writers: int = 2
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


def prompt_slug(prompt: str) -> str:
    """Folder name of a prompt: its sanitised text plus a hash of it, for every prompt alike."""
    digest = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]
    name = safe_name(prompt, 60)
    return name if name.endswith(f"_{digest}") else f"{name}_{digest}"


def pair_dir(out: Path, clip: str, prompt: str, method: str) -> Path:
    """``out/<clip>/<prompt>/<method>/``, guaranteed inside ``out`` (``gradcam++`` -> ``gradcampp``)."""
    rel = Path(clip_slug(clip)) / prompt_slug(prompt) / safe_name(method.replace("+", "p"), 30)
    return inside(out, rel)


def run_explain(cfg: ExplainConfig, reporter: Reporter | None = None) -> ExplainResult:
    """Explain every input with every method; rows are also reported as they are written.

    ``results.csv`` in ``cfg.out`` keeps the rows of earlier runs: this run's rows
    replace those with the same (clip, prompt, method) and add the others.
    """
    from lmaczs_cli.data.prompts import duplicate_warning, resolve_prompts
    from lmaczs_cli.inputs import collect_inputs, shard_inputs
    from lmaczs_cli.outdir import check_out_dir
    from lmaczs_cli.preflight import check_ready
    from lmaczs_cli.runtime import seed_everything

    rep = reporter or Reporter()
    run = cfg.run
    if cfg.top_k is not None and cfg.labels is None and not cfg.prompts_file and not cfg.prompt:
        raise UsageError("--top-k needs candidate prompts: --labels, --prompts-file or --prompt")
    prompts = resolve_prompts(cfg.prompt, cfg.prompts_file, cfg.labels, cfg.prompt_template)
    if (dup := duplicate_warning(prompts)) is not None:
        rep.warn(dup)
    shard = current_shard(cfg.shard)
    inputs = shard_inputs(collect_inputs(cfg.inputs, cfg.files_from), shard)
    check_out_dir(cfg.out)
    methods = _decoder_fallback(cfg)
    check_ready("explain" if cfg.methods == ["lmaczs"] else "run baselines", run, methods,
                cfg.method_options)
    if methods != cfg.methods:
        from lmaczs_cli.preflight import PERCLIP_COST

        rep.notice(f"lmaczs: no LMAC-ZS decoder for --clap {run.clap}: explaining per clip instead (method "
                   f"lmaczs-perclip: each mask optimised under the same objective, {PERCLIP_COST}); a "
                   "decoder makes it fast (docs/real-clap.md); --require-decoder refuses "
                   "instead")
    seed_everything(run.seed)
    ranks = Ranks(shard, run.device)
    try:
        return _run(cfg, rep, prompts, inputs, methods, shard, ranks)
    finally:
        ranks.close()


def _run(cfg: ExplainConfig, rep: Reporter, prompts: list[Prompt], inputs: Inputs, methods: list[str],
         shard: Shard, ranks: Ranks) -> ExplainResult:
    """The run once it can go ahead: model, explainers, results (this share of the inputs)."""
    from lmaczs_cli.api import load_explainer, load_model  # torch: only once the run can go ahead
    from lmaczs_cli.outdir import OutDir

    run = cfg.run
    model = load_model(run.clap, run.clap_ckpt, tokenizer_dir=run.tokenizer_dir, device=ranks.device,
                       seed=run.seed)
    explainers = [load_explainer(m, model, **cfg.method_options.get(m, {})) for m in methods]
    record = RunRecord("explain" if cfg.methods == ["lmaczs"] else "baseline", model,
                       {ex.name: ex for ex in explainers}, cfg.method_options, run)
    record.join(ranks.gather(record.run_id)[0], shard.record())
    for w in trust_warnings(model, run.precision):
        rep.warn(w)
    from lmaczs_cli.jobs.text_embedding import embed_prompts

    embed_prompts(model, [p.text for p in prompts], rep)  # cached for every method and clip
    t0 = time.perf_counter()
    with OutDir(cfg.out) as out:
        if out.cleaned:
            rep.info(f"lmaczs: removed {len(out.cleaned)} temp files left by an interrupted run")
        table = _Table(out, cfg, prompts, record)
        try:
            failed = {p.path: table.fail(p.path, m, p.reason, rep)
                      for p in inputs.problems for m in methods}
            for ex in explainers:
                failed |= _explain_with(ex, inputs.paths, prompts, cfg, table, rep)
            table.flush()
            if record.data.get("fusion"):
                rep.warn(fusion_note(model, len(record.data["fusion"])))
        finally:
            _trust_report(table, model, rep)
            record.write(cfg.out, rep.warnings, {"inputs": len(inputs.paths) + len(inputs.problems)},
                         summary=shard.first)
    n_inputs = len(inputs.paths) + len(inputs.problems)
    result = ExplainResult(table.rows, len(failed), n_inputs, table.path, time.perf_counter() - t0)
    noun = "explanation" if table.written == 1 else "explanations"
    where = f" (share {shard.index + 1} of {shard.count})" if shard.split else ""
    rep.info(f"lmaczs: {table.written} {noun} ({', '.join(methods)}) in {result.seconds:.1f} s "
             f"-> {table.path}{where}")
    if failed:
        rep.notice(f"lmaczs: {len(failed)} of {n_inputs} inputs failed{where}")
    ranks.gather(None)  # every rank is done: none exits while another still writes
    return result


def fusion_note(model, clips: int) -> str:
    """What is fused and what is per window when a fusion model explains clips longer than a window."""
    window = f"{model.window_seconds:g} s"
    return (f"{model.name} sees a clip longer than {window} whole (feature fusion): for {clips} such "
            f"clip{'s' if clips != 1 else ''}, similarity and masked_similarity are the fused "
            f"embedding's (the whole clip shrunk to one window + three {window} crops at starts chosen by "
            f"rule {getattr(model, 'crop_rule', '?')!r}, recorded per clip in run.json 'fusion'; the "
            f"masked clip is the whole clip times the mask); the mask itself is computed window by "
            f"window ({window} windows, 50% overlap) and stitched over the whole clip")


def _decoder_fallback(cfg: ExplainConfig) -> list[str]:
    """The methods to run: ``lmaczs`` becomes per-clip LMAC-ZS when no decoder is given, bundled or
    cached for the model, unless ``require_decoder`` (then preflight refuses)."""
    from lmaczs_cli.preflight import lacks_decoder

    if "lmaczs" not in cfg.methods or cfg.require_decoder:
        return list(cfg.methods)
    if not lacks_decoder(cfg.run.clap, cfg.method_options):
        return list(cfg.methods)
    return list(dict.fromkeys("lmaczs-perclip" if m == "lmaczs" else m for m in cfg.methods))


def _trust_report(table: _Table, model, rep: Reporter) -> None:
    """Warn about this run's unfaithful pairs and clips the model does not know."""
    from lmaczs_cli.provenance import FAITHFUL_TOL, domain_warning

    mine = [r for r in table.mine if r.get("status") == "ok"]
    off = [r for r in mine if r.get("faithful") == 0]
    if off:
        above = sum(1 for r in off if float(r["masked_similarity"]) > float(r["similarity"]))
        why = []
        if above:
            why.append(f"{above} match their prompt better than the whole clip (s~ > s: what the map "
                       "keeps is the prompt's evidence, the clip's other sounds lower s)")
        if len(off) > above:
            why.append(f"{len(off) - above} match it less (s~ < s: the map misses evidence)")
        rep.warn(f"{len(off)} of {len(mine)} explanations are not faithful (|s - s~| > {FAITHFUL_TOL}; "
                 f"marked faithful=0 in results.csv): {'; '.join(why)}")
    warning = domain_warning({r["clip"]: r.get("in_domain") for r in mine}, model.name, "results.csv")
    if warning:
        rep.warn(warning)


def _explain_with(explainer, paths: list[Path], prompts: list[Prompt], cfg: ExplainConfig,
                  table: _Table, rep: Reporter) -> dict[str, str]:
    """Run one method over the inputs not yet done; returns the inputs that failed, with why."""
    from lmaczs_cli.api import explain_many
    from lmaczs_cli.streaming import is_long

    run, method = cfg.run, explainer.name
    todo = table.todo(paths, method)
    if len(todo) < len(paths):
        rep.info(f"lmaczs: resuming: {len(paths) - len(todo)} clips already done ({method})")
    long = [p for p in todo if is_long(p, explainer.model)]  # streamed: memory bounded, not by length
    streamed = set(long)
    short = [p for p in todo if p not in streamed]
    failed: dict[str, str] = {}

    def take(clip: str, error: str | None, rows: list[dict]) -> None:
        if error is not None:
            failed[clip] = table.fail(clip, method, error, rep)
            if cfg.fail_fast:
                table.flush()
                raise UsageError(f"stopping at the first bad input (--fail-fast): {error}")
        else:
            table.add(rows, rep)

    with rep.progress(len(todo), method) as advance:
        def taken(clip: str, error: str | None, rows: list[dict]) -> None:
            take(clip, error, rows)
            advance(1)

        # the files of a clip are written by writer threads while the model explains the next ones
        with OrderedWriters(lambda e: _save(e, cfg, table.record), taken, workers=cfg.writers) as writers:
            for res in explain_many(explainer, short, prompts, top_k=cfg.top_k,
                                    batch_size=run.batch_size, num_workers=run.num_workers, score=cfg.score,
                                    precision=run.precision):
                writers.submit(res.clip, res.error, res.explanations)
        for path in long:
            take(str(path), *_save_streaming(explainer, path, prompts, cfg, table.record))
            advance(1)
    return failed


def _save(e, cfg: ExplainConfig, record: RunRecord) -> dict:
    """Write one explanation's files; on a write failure remove what was written and stop the run."""
    from lmaczs_cli.outdir import write_failure

    folder = pair_dir(cfg.out, e.clip, e.prompt, e.method)
    try:
        paths = e.save(folder, residual=cfg.residual, save_mask=cfg.save_mask, map_png=cfg.maps)
    except (OSError, RuntimeError) as err:  # RuntimeError: libsndfile's "System error." on a full disk
        names = ("explanation.wav", "residual.wav", "mask.npy", "map.png")
        for name in names:
            (folder / name).unlink(missing_ok=True)
        raise write_failure(getattr(err, "filename", None) or folder, err) from None
    return _row(e, paths, record)


def _save_streaming(explainer, path: Path, prompts: list[Prompt], cfg: ExplainConfig,
                    record: RunRecord) -> tuple[str | None, list[dict]]:
    """Explain one long clip straight to its files (memory bounded by a few windows): (error, rows).

    A clip that cannot be decoded is its error (no file left); a write failure stops the run.
    """
    from lmaczs_cli.errors import AudioError
    from lmaczs_cli.outdir import write_failure
    from lmaczs_cli.streaming import explain_clip_streaming

    run = cfg.run
    try:
        saved = explain_clip_streaming(
            explainer, path, prompts, lambda p: pair_dir(cfg.out, str(path), p.text, explainer.name),
            top_k=cfg.top_k, batch_size=run.batch_size, score=cfg.score, precision=run.precision,
            residual=cfg.residual, save_mask=cfg.save_mask, maps=cfg.maps)
    except AudioError as err:
        return " ".join(str(err).split()), []
    except OSError as err:
        raise write_failure(err.filename or cfg.out, err) from None
    return None, [_row(e, e.paths, record) for e in saved]


def clip_warning(clip: str, wave=None) -> str | None:
    """What a user should know of a clip that was explained all the same: a truncated file (its
    header promises more), digital silence (e.g. channels that cancel), a peak over full scale.
    ``wave``: the samples the model heard (None for streamed clips: only the header is checked)."""
    from lmaczs_cli.audio import header_facts, wave_warning

    truncated, channels = header_facts(clip)
    notes = [truncated, None if wave is None else wave_warning(wave, channels)]
    return "; ".join(n for n in notes if n) or None


def _row(e, paths: dict[str, Path], record: RunRecord) -> dict:
    """The results.csv row of one written explanation (an ``Explanation`` or a ``StreamedExplanation``)."""
    result = getattr(e, "_result", None)
    record.note_fusion(e.clip, getattr(e, "fusion", None))
    return {
        "clip": e.clip, "prompt": e.prompt, "label": e.label, "method": e.method, "rank": e.rank,
        "similarity": e.similarity, "masked_similarity": e.masked_similarity, "mask_mean": e.mask_mean,
        "faithful": _int(e.faithful), "in_domain": _int(e.in_domain),
        "wav": str(paths["wav"]), "residual_wav": _str(paths.get("residual_wav")),
        "png": _str(paths.get("png")),
        "mask": _str(paths.get("mask")), "status": "ok", "error": None,
        "warning": clip_warning(e.clip, None if result is None else result.record["wave"]),
        **record.row_fields(e.method),
        **span_fields(e),  # its time spans: events.csv and --json
    }


def _int(flag: bool | None) -> int | None:
    return None if flag is None else int(flag)


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _key(row) -> tuple[str, str, str]:
    return (str(row.get("clip") or ""), str(row.get("prompt") or ""), str(row.get("method") or ""))


class _Table:
    """results.csv: this run's rows merged into what is on disk at most every second, and at the end."""

    def __init__(self, out, cfg: ExplainConfig, prompts: list[Prompt], record: RunRecord) -> None:
        self.out, self.cfg, self.prompts, self.record = out, cfg, prompts, record
        self.mine: list[dict] = []  # this run's rows
        self.path = out.path / "results.csv"
        self.k = min(cfg.top_k or len(prompts), len(prompts))
        self.done = _done_rows(read_csv(self.path)) if cfg.resume else {}
        self.pending: list[dict] = []
        self.rows: list[dict] = read_csv(self.path)
        self.written = 0
        self.warned: set[str] = set()
        self._last = 0.0

    def todo(self, paths: list[Path], method: str) -> list[Path]:
        """The inputs whose pairs for ``method`` are not all in the table (with --resume), counting
        only rows made as this run would make them (same model, checkpoint, decoder, mask domain,
        method identity, e.g. IG's steps, and the residual / mask files it asks for)."""
        same = self._same_origin(method)
        return [p for p in paths
                if not self._clip_done([r for r in self.done.get((str(p), method), []) if same(r)])]

    def _same_origin(self, method: str):
        asked = (("residual_wav", self.cfg.residual), ("mask", self.cfg.save_mask))
        files = [k for k, on in asked if on]

        def same(row: dict) -> bool:
            return self.record.made_alike(row) and all(row.get(k) and Path(row[k]).exists() for k in files)
        return same

    def _clip_done(self, rows: list[dict]) -> bool:
        if self.cfg.top_k:
            return len(rows) >= self.k
        return bool(rows) and {p.text for p in self.prompts} <= {r["prompt"] for r in rows}

    def add(self, rows: list[dict], rep: Reporter) -> None:
        self.pending += rows
        self.mine += rows
        self.written += len(rows)
        for row in rows:
            rep.result({k: v for k, v in row.items() if v not in (None, "")})
            if row.get("warning") and row["clip"] not in self.warned:  # once per clip, kept in run.json
                self.warned.add(row["clip"])
                rep.warn(f"{row['clip']}: {row['warning']}")
        if time.monotonic() - self._last >= 1.0:
            self.flush()

    def fail(self, clip: str, method: str, error: str, rep: Reporter) -> str:
        rep.error(f"lmaczs: {error}")
        self.add([{"clip": clip, "method": method, "status": "error", "error": error,
                   **self.record.row_fields(method)}], rep)
        self.written -= 1
        return error

    def flush(self) -> None:
        ok = {(r["clip"], r["method"]) for r in self.pending if r.get("status") == "ok"}
        new, self.pending = self.pending, []

        def stale_error(r) -> bool:  # an input that failed before and now has explanations
            return r.get("status") == "error" and (r.get("clip"), r.get("method")) in ok

        self.rows = self.out.update_table("results.csv", new, RESULT_COLUMNS, _key, stale_error)
        update_events(self.out, new)
        self._last = time.monotonic()


def _done_rows(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Finished pairs on disk by (clip, method): status ok and the WAV still there."""
    done: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("status") == "ok" and Path(r.get("wav", "")).exists():
            done.setdefault((r["clip"], r["method"]), []).append(r)
    return done
