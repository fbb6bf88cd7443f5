"""The run records of a folder (``runs.jsonl``, ``run.json``) and what they warn about."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Runs:
    """Every run record found, oldest first, and the problems met reading them."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def random_weight_runs(self) -> list[dict[str, Any]]:
        """The runs whose model had random (untrained) weights."""
        return [r for r in self.records if _model(r).get("random_weights") is True]

    def warnings(self) -> list[tuple[str, str]]:
        """(run id, warning) for every warning of every run, each once, in run order."""
        seen: dict[tuple[str, str], None] = {}
        for r in self.records:
            for w in r.get("warnings") or []:
                seen.setdefault((str(r.get("run_id") or "?"), str(w)), None)
        return list(seen)

    def cwds(self) -> list[str]:
        """Working folders the runs recorded (newest first), to find clips given as relative paths."""
        return [str(r["cwd"]) for r in reversed(self.records) if isinstance(r.get("cwd"), str)]


def read_runs(run_dir: Path) -> Runs:
    """Records from ``runs.jsonl`` plus ``run.json`` when it is not among them; bad lines are noted."""
    runs = Runs()
    jsonl = run_dir / "runs.jsonl"
    if jsonl.is_file():
        for n, line in enumerate(jsonl.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            rec = _record(line)
            if rec is None:
                runs.problems.append(f"runs.jsonl line {n} is not a run record; skipped")
            else:
                runs.records.append(rec)
    latest = run_dir / "run.json"
    if latest.is_file():
        rec = _record(latest.read_text(encoding="utf-8", errors="replace"))
        if rec is None:
            runs.problems.append("run.json is not a run record; skipped")
        elif rec.get("run_id") not in {r.get("run_id") for r in runs.records}:
            runs.records.append(rec)
    return runs


def _record(text: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(text)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _model(rec: dict[str, Any]) -> dict[str, Any]:
    m = rec.get("model")
    return m if isinstance(m, dict) else {}


def summary_fields(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """One run record as (label, text) pairs for the provenance table."""
    model = _model(rec)
    ckpt = str(model.get("checkpoint") or "")
    if model.get("checkpoint_sha256"):
        ckpt += f" (sha256 {str(model['checkpoint_sha256'])[:12]}…)"
    methods = rec.get("methods") if isinstance(rec.get("methods"), dict) else {}
    fields = [
        ("command", str(rec.get("command") or "")),
        ("started", str(rec.get("started") or "")),
        ("finished", str(rec.get("finished") or "not recorded (interrupted?)")),
        ("lmaczs", str(rec.get("lmaczs_version") or "")),
        ("model", f"{model.get('name') or ''}{' — RANDOM WEIGHTS' if model.get('random_weights') else ''}"),
        ("checkpoint", ckpt),
    ]
    for name, m in methods.items():
        fields.append((f"method {name}", _method_text(m if isinstance(m, dict) else {})))
    fields += [(k, str(rec.get(k))) for k in ("seed", "device", "precision") if rec.get(k) is not None]
    if rec.get("argv"):
        fields.append(("command line", " ".join(str(a) for a in rec["argv"])))
    return fields


def _method_text(m: dict[str, Any]) -> str:
    parts = []
    if m.get("decoder"):
        sha = f" (sha256 {str(m['decoder_sha256'])[:12]}…)" if m.get("decoder_sha256") else ""
        parts.append(f"decoder {m['decoder']}{sha}")
    if m.get("mask_domain"):
        parts.append(f"mask domain {m['mask_domain']}")
    opts = m.get("options")
    if isinstance(opts, dict) and opts:
        parts.append(", ".join(f"{k}={v}" for k, v in opts.items() if v is not None))
    return "; ".join(p for p in parts if p) or "default options"
