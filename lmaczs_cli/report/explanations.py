"""``results.csv`` of explain/baseline runs -> the page's data: clips, and one row per explanation.

Each row keeps its numbers (s, s~, mask mean, rank), its origin (run, model, checkpoint,
decoder) when the run recorded it, and links to its files relative to the report; a file
that is recorded but missing is named in ``missing`` and gets no link (no player).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmaczs_cli.outputs import read_csv, safe_name
from lmaczs_cli.report.links import PLAYABLE, Resolver
from lmaczs_cli.report.studies import number

FILES = {"wav": "explanation", "residual_wav": "residual", "png": "map", "mask": "mask"}
NUMBERS = ("similarity", "masked_similarity", "mask_mean")


@dataclass
class Explanations:
    """The page data of results.csv (JSON-ready) and counts for the summary line."""

    clips: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return sum(1 for r in self.rows if r["status"] == "ok")

    @property
    def n_missing(self) -> int:
        return sum(1 for r in self.rows if r["missing"])

    def data(self) -> dict[str, Any]:
        return {"clips": self.clips, "rows": self.rows}


def gather_explanations(run_dir: Path, resolver: Resolver,
                        copy_originals: bool = False) -> Explanations | None:
    """The explanations in ``run_dir/results.csv``, or None when there is no such table."""
    table = run_dir / "results.csv"
    if not table.is_file():
        return None
    found = Explanations()
    index: dict[str, int] = {}
    for rec in read_csv(table):
        clip = rec.get("clip") or ""
        if clip not in index:
            index[clip] = len(found.clips)
            found.clips.append({"name": clip})
        found.rows.append(_row(rec, index[clip], resolver))
    explained = {r["clip"] for r in found.rows if r["status"] == "ok"}
    for i, clip in enumerate(found.clips):  # after the outputs: they tell the resolver where the run ran
        if i in explained:
            clip.update(_original(clip["name"], run_dir, resolver, copy_originals))
        else:  # an input that failed may not be audio at all: its error says why, no player
            clip.update(original=None, note="", failed=True)
    return found


def _row(rec: dict[str, str], clip: int, resolver: Resolver) -> dict[str, Any]:
    row: dict[str, Any] = {
        "clip": clip, "prompt": rec.get("prompt") or "", "label": rec.get("label") or "",
        "method": rec.get("method") or "", "rank": _int(rec.get("rank")),
        "status": rec.get("status") or "ok", "error": rec.get("error") or "",
        "faithful": {"1": True, "0": False}.get((rec.get("faithful") or "").strip()),
        "missing": [],
    }
    row.update({k: number(rec.get(k)) for k in NUMBERS})
    row.update({k: rec.get(k) or "" for k in ("run_id", "model", "checkpoint", "decoder", "mask_domain")})
    for column, name in FILES.items():
        recorded = rec.get(column) or ""
        path = resolver.output(recorded)
        row[name] = resolver.link(path)
        if recorded and path is None:
            row["missing"].append(recorded)
    return row


def _original(name: str, run_dir: Path, resolver: Resolver, copy: bool) -> dict[str, Any]:
    """The original clip's link, or a note saying why it cannot be played."""
    path = resolver.anywhere(name)
    if path is None:
        return {"original": None, "failed": False,
                "note": "original not found (moved, or recorded relative to another folder)"}
    inside = run_dir.resolve() in path.parents
    if copy and (not inside or path.suffix.lower() not in PLAYABLE):
        path = copy_original(path, run_dir / "originals")
    elif path.suffix.lower() not in PLAYABLE:
        return {"original": None, "failed": False,
                "note": f"browsers cannot play {path.suffix or 'this'} files "
                        "(lmaczs report --copy-originals converts them to WAV)"}
    return {"original": resolver.link(path), "note": "", "failed": False}


def copy_original(src: Path, folder: Path) -> Path:
    """``src`` copied into ``folder`` (as 16-bit WAV when browsers cannot play its format).

    The name keeps the stem and adds a hash of the full path, so clips with the same name
    stay apart; a copy that is already there with the same size is reused.
    """
    from lmaczs_cli.outputs import atomic_path

    digest = hashlib.sha1(str(src).encode()).hexdigest()[:8]
    playable = src.suffix.lower() in PLAYABLE
    dst = folder / f"{safe_name(src.stem, 50)}_{digest}{src.suffix.lower() if playable else '.wav'}"
    if playable:
        if not (dst.is_file() and dst.stat().st_size == src.stat().st_size):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    elif not dst.is_file():
        import soundfile as sf

        data, rate = sf.read(str(src), always_2d=True)
        with atomic_path(dst) as tmp:
            sf.write(str(tmp), data, rate, subtype="PCM_16", format="WAV")
    return dst


def _int(text: str | None) -> int | None:
    v = number(text)
    return None if v is None else int(v)
