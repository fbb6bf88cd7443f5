"""What produced a result, and whether to trust it.

Every run writes ``run.json`` into its ``--out`` (the latest run) and appends the same
record to ``runs.jsonl`` (every run into that folder): command line, lmaczs version,
model and checkpoint (path and SHA-256), each method's options and identity (the settings
that define its masks, :meth:`Explainer.identity`; LMAC-ZS: decoder path and SHA-256, mask
domain), seed, device, precision, start and end, and the warnings the run gave. Result rows
carry ``run_id``, the model, checkpoint and decoder, and the method's identity
(``method_options``, canonical JSON), which ``--resume`` compares.

Trust: :data:`FAITHFUL_TOL` decides the ``faithful`` column (``|s − s~|`` at most it),
:data:`ACCURACY_FLOOR` when ``evaluate`` warns that the model is mostly wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmaczs_cli import __version__

#: a pair is faithful when its masked similarity is within this of its similarity
FAITHFUL_TOL = 0.1
#: evaluate warns when the model's zero-shot accuracy on the evaluated clips is below this
ACCURACY_FLOOR = 0.5
#: a run warns when at least this share of its clips look unlike the audio the model knows
DOMAIN_WARN_SHARE = 0.2
#: the fields of a result row that must match for ``--resume`` to count it as done
ALIKE_FIELDS = ("model", "checkpoint", "decoder", "mask_domain", "method_options")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 of a file (a folder: of its files' digests), cached by path, size and mtime."""
    if path is None or not Path(path).exists():
        return None
    p = Path(path).resolve()
    if p.is_dir():
        inner = "".join(f"{f.relative_to(p)}:{file_sha256(f)}\n" for f in sorted(p.rglob("*")) if f.is_file())
        return hashlib.sha256(inner.encode()).hexdigest()
    st = p.stat()
    key = hashlib.sha256(f"{p}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    cache = _cache_dir() / key
    if cache.is_file():
        return cache.read_text().strip()
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(digest)
    except OSError:
        pass  # a read-only cache only costs the next run a re-hash
    return digest


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lmaczs" / "sha256"


def model_record(model: Any) -> dict[str, Any]:
    """The model's name, checkpoint path and digest, and whether its weights are random."""
    path = getattr(model, "checkpoint_path", None)
    rec = {"name": model.name, "checkpoint": path or "random", "checkpoint_sha256": file_sha256(path),
           "random_weights": bool(getattr(model, "random_weights", path is None))}
    if getattr(model, "fuses_long_clips", False):  # how its crops of a long clip are chosen
        rec["fusion_rule"] = getattr(model, "crop_rule", None)
    return rec


def method_identity(explainer: Any) -> dict[str, str]:
    """What the explainer says defines its masks (:meth:`Explainer.identity`; ``{}`` without one)."""
    identity = getattr(explainer, "identity", None)
    return dict(identity()) if callable(identity) else {}


def method_record(explainer: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A method's options and identity; for LMAC-ZS also its decoder (path, digest) and mask domain."""
    rec: dict[str, Any] = {"options": {k: (str(v) if isinstance(v, Path) else v)
                                       for k, v in (options or {}).items()},
                           "identity": method_identity(explainer)}
    decoder = getattr(explainer, "decoder_path", None)
    if decoder is not None:
        rec.update(decoder=str(decoder), decoder_sha256=file_sha256(decoder),
                   mask_domain=getattr(explainer, "domain", None))
    return rec


class RunRecord:
    """The record of one run, written with :meth:`write` when the run ends (or fails)."""

    def __init__(self, command: str, model: Any, explainers: dict[str, Any],
                 options: dict[str, dict[str, Any]] | None = None, run: Any = None) -> None:
        self.run_id = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        self.model = model_record(model)
        self.methods = {m: method_record(ex, (options or {}).get(m)) for m, ex in explainers.items()}
        self.data: dict[str, Any] = {
            "run_id": self.run_id, "command": command, "argv": list(sys.argv), "cwd": os.getcwd(),
            "lmaczs_version": __version__,
            "started": _now(), "finished": None, "model": self.model, "methods": self.methods,
            "seed": getattr(run, "seed", None), "device": str(getattr(model, "device", "")),
            "precision": effective_precision(getattr(run, "precision", None), model), "warnings": [],
        }

    def join(self, run_id: str, shard: dict[str, Any] | None) -> None:
        """Share ``run_id`` (rank 0's, under torchrun) and record this process's share of the inputs."""
        self.run_id = self.data["run_id"] = run_id
        self.data["shard"] = shard

    def row_fields(self, method: str) -> dict[str, Any]:
        """What every result row of ``method`` carries about its origin (``method_options``: its
        identity as canonical JSON, empty for a method with none)."""
        from lmaczs_cli.explainers.base import identity_string

        m = self.methods.get(method, {})
        return {"run_id": self.run_id, "model": self.model["name"], "checkpoint": self.model["checkpoint"],
                "decoder": m.get("decoder"), "mask_domain": m.get("mask_domain"),
                "method_options": identity_string(m.get("identity")) or None}

    def made_alike(self, row: Mapping[str, Any]) -> bool:
        """True when a result row on disk was made as this run makes its method's rows: same
        model, checkpoint, decoder, mask domain and method identity (what ``--resume`` may skip).

        A row written before rows carried ``method_options`` counts as made another way for a
        method whose identity is not empty (it is redone once)."""
        want = self.row_fields(str(row.get("method") or ""))
        return all(str(row.get(k) or "") == ("" if want[k] is None else str(want[k]))
                   for k in ALIKE_FIELDS)

    def note_fusion(self, clip: str, view: Mapping[str, Any] | None) -> None:
        """Record how a fused model saw a clip longer than one window (crop rule, crop starts in
        frames, sizes: ``fusion_record``) under run.json's ``fusion``, by clip."""
        if view:
            self.data.setdefault("fusion", {})[clip] = dict(view)

    def write(self, out: Path, warnings: list[str], extra: dict[str, Any] | None = None,
              summary: bool = True) -> None:
        """``run.json`` (atomically; not when ``summary`` is False: a share of a split run other
        than the first) and one more line of ``runs.jsonl`` (under a lock)."""
        from lmaczs_cli.outdir import locked
        from lmaczs_cli.outputs import write_text_atomic

        torch = sys.modules.get("torch")
        threads = torch.get_num_threads() if torch is not None else None
        self.data.update(finished=_now(), warnings=list(dict.fromkeys(warnings)), threads=threads,
                         **(extra or {}))
        text = json.dumps(self.data, indent=2, default=str)
        if summary:
            write_text_atomic(out / "run.json", text + "\n")
        with locked(out / ".runs.jsonl.lock"), (out / "runs.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(self.data, default=str) + "\n")


def effective_precision(precision: str | None, model: Any) -> str | None:
    """What a run computes in: bf16/fp16 autocast applies on CUDA only, elsewhere it is fp32."""
    on_cuda = str(getattr(model, "device", "")).startswith("cuda")
    return precision if precision in (None, "fp32") or on_cuda else "fp32"


def trust_warnings(model: Any, precision: str | None = None) -> list[str]:
    """Warnings about the model itself (random weights) and a ``--precision`` it cannot use."""
    out = []
    if getattr(model, "random_weights", False):
        stub = (" and a stand-in text tokenizer (no tokenizer files were found)"
                if getattr(model, "stub_tokenizer", False) else "")
        out.append(f"{model.name} has RANDOM WEIGHTS (--clap-ckpt random){stub}: similarities and "
                   "explanations are meaningless; pass --clap-ckpt FILE for a trained model")
    if effective_precision(precision, model) != precision:
        out.append(f"--precision {precision} applies on CUDA only: on {model.device} this run computes "
                   "in fp32 (run.json says so)")
    return out


def domain_warning(in_domain: Mapping[str, Any], model_name: str, table: str) -> str | None:
    """The warning for a run whose clips (clip -> in_domain flag, as written to ``table``) are
    too often outside the model's training audio (at least DOMAIN_WARN_SHARE of them), else None."""
    outside = [c for c, v in in_domain.items() if v not in (None, "") and not int(v)]
    if not in_domain or len(outside) < max(1, DOMAIN_WARN_SHARE * len(in_domain)):
        return None
    from lmaczs_cli.models.families import family_of

    family = family_of(model_name)
    note = f" ({family.domain_note})" if family is not None and family.domain_note else ""
    return (f"{len(outside)} of {len(in_domain)} clips are unlike the audio {model_name} was trained on "
            f"(in_domain=0 in {table}): its similarities and explanations for them mean little{note}")


def faithful(similarity: float | None, masked: float | None) -> int | None:
    """1 when ``|s − s~| <= FAITHFUL_TOL``, 0 when not, None when s~ was not computed."""
    if similarity is None or masked is None:
        return None
    return int(abs(float(similarity) - float(masked)) <= FAITHFUL_TOL)
