"""``events.csv`` beside ``results.csv``: one row per time span (segment) of each explanation.

Rows come from the results rows of :mod:`lmaczs_cli.jobs.explain` (their ``events`` list, see
:meth:`lmaczs_cli.events.TimeSpans.segments`) and are merged into the table the way results are
(:meth:`lmaczs_cli.outdir.OutDir.update_table`: locked, atomic, other runs' rows kept). An
explained pair replaces every earlier row of the same (clip, prompt, method), so a pair with fewer
segments than before leaves none behind; a failed input removes that clip's rows for the method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

EVENT_COLUMNS = [
    "clip", "prompt", "label", "method", "rank", "segment", "onset", "offset", "peak_time", "strength",
    "threshold", "run_id", "model",
]


def _pair(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("clip") or ""), str(row.get("prompt") or ""), str(row.get("method") or ""))


def event_rows(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events.csv rows of one results row (none unless it is an explained pair)."""
    if row.get("status") != "ok":
        return []
    base = {k: row.get(k) for k in ("clip", "prompt", "label", "method", "rank", "run_id", "model")}
    return [{**base, "segment": i, **seg, "threshold": row.get("events_threshold")}
            for i, seg in enumerate(row.get("events") or [], start=1)]


def update_events(out, rows: Iterable[Mapping[str, Any]]) -> None:
    """Merge the segments of ``rows`` (results rows of one flush) into ``out``'s events.csv."""
    rows = list(rows)
    pairs = {_pair(r) for r in rows if r.get("status") == "ok"}
    failed = {(str(r.get("clip") or ""), str(r.get("method") or ""))
              for r in rows if r.get("status") == "error"}
    if not pairs and not failed:
        return
    new = [e for r in rows for e in event_rows(r)]

    def replaced(r: Mapping[str, Any]) -> bool:
        clip, prompt, method = _pair(r)
        return (clip, prompt, method) in pairs or (clip, method) in failed

    out.update_table("events.csv", new, EVENT_COLUMNS, lambda r: (*_pair(r), str(r.get("segment"))), replaced)


def span_fields(e) -> dict[str, Any]:
    """The fields a results row carries for events.csv and ``--json``: its segments and threshold."""
    from lmaczs_cli.events import decoding_for

    return {"events": [s.as_dict() for s in e.segments()], "events_threshold": decoding_for(e.method)[0]}
