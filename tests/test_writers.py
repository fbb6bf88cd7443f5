"""Files written by writer threads while the model works: rows keep their order, errors reach the
caller, and ``--no-maps`` writes no PNG (issue #29)."""

from __future__ import annotations

import csv
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.writers import OrderedWriters

runner = CliRunner()


@pytest.mark.parametrize("workers", [0, 3])
def test_inputs_are_handed_over_in_submission_order(workers: int) -> None:
    rng = random.Random(0)
    threads: set[str] = set()

    def save(item: int) -> int:
        time.sleep(rng.random() * 0.01)  # later items often finish first
        threads.add(threading.current_thread().name)
        return item * 10

    seen: list[tuple[str, str | None, list[int]]] = []
    with OrderedWriters(save, lambda k, e, r: seen.append((k, e, r)), workers=workers, limit=4) as w:
        for i in range(12):
            w.submit(f"c{i}", "bad" if i == 5 else None, [] if i == 5 else [i, i + 100])
    assert [k for k, _, _ in seen] == [f"c{i}" for i in range(12)]
    assert seen[5] == ("c5", "bad", []) and seen[7] == ("c7", None, [70, 1070])
    assert any(n.startswith("lmaczs-writer") for n in threads) == (workers > 0)


def test_a_failing_save_reaches_the_caller_and_later_work_is_dropped() -> None:
    seen: list[str] = []

    def save(item: int) -> int:
        if item == 3:
            raise OSError(28, "No space left on device")
        return item

    with pytest.raises(OSError, match="No space"), OrderedWriters(save, lambda k, e, r: seen.append(k),
                                                                 workers=2, limit=2) as w:
        for i in range(8):
            w.submit(f"c{i}", None, [i])
    assert seen[:3] == ["c0", "c1", "c2"] and "c3" not in seen


def test_no_maps_writes_tables_and_wavs_only(tmp_path: Path) -> None:
    clip = tmp_path / "c.wav"
    sf.write(clip, (0.3 * np.sin(np.arange(16000) / 5.0)).astype(np.float32), 16000)
    out = tmp_path / "out"
    r = runner.invoke(app, ["explain", str(clip), "--clap", "small", "--prompt", "beep", "--prompt", "bell",
                            "--no-maps", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(x["png"] == "" and Path(x["wav"]).is_file() for x in rows)
    assert not list(out.rglob("*.png"))
