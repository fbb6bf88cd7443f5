"""The run's log: ``log.jsonl`` (train and val events, appended) and ``val.csv``, on rank 0 only."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any


class TrainLog:
    """``log.jsonl`` (append) and ``val.csv`` (rewritten), on rank 0 only."""

    VAL_COLUMNS = ["step", "val_loss", "l_sim", "mae", "corr", "fid_in", "mask_mean", "pairs", "time"]

    def __init__(self, out: Path, enabled: bool, resume_step: int | None) -> None:
        self.path = out / "log.jsonl"
        self.enabled = enabled
        self.val_rows: list[dict[str, Any]] = []
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    rec = json.loads(line)
                    if rec.get("step", 0) <= resume_step:
                        kept.append(line)
                        if rec.get("event") == "val":
                            self.val_rows.append(rec)
            from lmaczs_cli.outputs import write_text_atomic

            write_text_atomic(self.path, "".join(k + "\n" for k in kept))
        elif self.path.exists():
            self.path.unlink()

    def write(self, rec: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        if rec.get("event") == "val":
            from lmaczs_cli.outputs import write_csv_atomic

            self.val_rows.append(rec)
            write_csv_atomic(self.path.with_name("val.csv"), self.val_rows, self.VAL_COLUMNS)
