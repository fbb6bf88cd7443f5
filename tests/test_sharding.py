"""Batch commands split over processes: ``--shard I/N`` and torchrun ranks write the rows one
process writes, into one ``--out``; ``--threads`` is honoured and recorded (issue #29)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.errors import UsageError
from lmaczs_cli.sharding import Shard, current_shard, parse_shard
from tests.test_ddp import _free_port

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SMALL = ["--clap", "small", "--device", "cpu", "--quiet"]


def _clips(folder: Path, n: int = 5) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        t = np.arange(16000) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (300 + 150 * i) * t) + 0.01 * rng.standard_normal(16000)
        sf.write(folder / f"c{i}.wav", wave.astype(np.float32), 16000)
    return folder


def _table(path: Path) -> dict[tuple[str, str, str], dict]:
    with path.open(newline="") as f:
        return {(r["clip"], r["prompt"], r["method"]): r for r in csv.DictReader(f)}


def _same_numbers(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        for col in ("similarity", "masked_similarity", "mask_mean"):
            assert float(a[k][col]) == pytest.approx(float(b[k][col]), abs=1e-5), (k, col)
        assert a[k]["status"] == b[k]["status"] == "ok"


def test_parse_shard_accepts_i_of_n_and_refuses_the_rest() -> None:
    assert parse_shard(None) == (0, 1) and parse_shard("0/4") == (0, 4) and parse_shard(" 3 / 4 ") == (3, 4)
    for bad in ("4/4", "1/0", "-1/2", "a/b", "2"):
        with pytest.raises(UsageError, match="expected I/N"):
            parse_shard(bad)


def test_shares_are_disjoint_round_robin_and_cover_every_input(monkeypatch) -> None:
    items = list(range(11))
    shares = [Shard(i, 3).take(items) for i in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    s = current_shard("1/3")  # the second job of three, its second rank: share 3 of 6
    assert (s.index, s.count, s.rank, s.world) == (3, 6, 1, 2) and not s.first
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert current_shard(None) == Shard()


def test_shards_write_the_rows_one_process_writes(tmp_path: Path) -> None:
    clips = _clips(tmp_path / "in")
    one, split = tmp_path / "one", tmp_path / "split"
    base = ["explain", str(clips), *SMALL, "--prompt", "beep", "--prompt", "bell"]
    assert runner.invoke(app, [*base, "--out", str(one)]).exit_code == 0
    for i in range(2):
        r = runner.invoke(app, [*base, "--out", str(split), "--shard", f"{i}/2"])
        assert r.exit_code == 0, r.output
    _same_numbers(_table(one / "results.csv"), _table(split / "results.csv"))
    runs = [json.loads(x) for x in (split / "runs.jsonl").read_text().splitlines()]
    assert [r["shard"]["index"] for r in runs] == [0, 1] and runs[0]["inputs"] == 3 and runs[1]["inputs"] == 2
    assert json.loads((split / "run.json").read_text())["shard"]["index"] == 0  # the first share's record
    # --resume on the whole set afterwards finds every pair done
    r = runner.invoke(app, [*base, "--out", str(split), "--resume"])
    assert r.exit_code == 0 and len(_table(split / "results.csv")) == 10


def test_classify_shards_keep_every_clip(tmp_path: Path) -> None:
    clips = _clips(tmp_path / "in", 3)
    for i in range(3):
        r = runner.invoke(app, ["classify", str(clips), *SMALL, "--labels", "synth", "--top-k", "2", "--out",
                                str(tmp_path / "o"), "--shard", f"{i}/3"])
        assert r.exit_code == 0, r.output
    with (tmp_path / "o" / "classify.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({Path(r["clip"]).name for r in rows}) == ["c0.wav", "c1.wav", "c2.wav"] and len(rows) == 6


def test_threads_are_set_and_recorded(tmp_path: Path) -> None:
    clips = _clips(tmp_path / "in", 1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lmaczs_cli", "explain", str(clips), *SMALL, "--prompt", "beep",
           "--threads", "1", "--out", str(tmp_path / "o")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o" / "run.json").read_text())["threads"] == 1


@pytest.mark.slow
def test_torchrun_ranks_write_the_rows_one_process_writes(tmp_path: Path) -> None:
    clips = _clips(tmp_path / "in")
    one, ranked = tmp_path / "one", tmp_path / "ranked"
    args = ["explain", str(clips), *SMALL, "--prompt", "beep", "--prompt", "bell", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "lmaczs_cli", *args, "--out", str(one)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "lmaczs_cli", *args,
           "--out", str(ranked)]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _table(ranked / "results.csv")
    _same_numbers(_table(one / "results.csv"), rows)
    assert len({r["run_id"] for r in rows.values()}) == 1  # rank 0's run id on every row
    runs = [json.loads(x) for x in (ranked / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["shard"]["torchrun_rank"] for r in runs) == [0, 1]


def test_evaluate_shards_write_the_rows_one_process_writes(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    r = runner.invoke(app, ["synth", "--n", "6", "--seed", "11", "--out", str(root), "--quiet"])
    assert r.exit_code == 0, r.output
    base = ["evaluate", "--dataset", "synth", "--data-root", str(root), *SMALL, "--method", "lmaczs",
            "--method", "all-ones"]
    assert runner.invoke(app, [*base, "--out", str(tmp_path / "one")]).exit_code == 0
    for i in range(3):
        r = runner.invoke(app, [*base, "--out", str(tmp_path / "split"), "--shard", f"{i}/3"])
        assert r.exit_code == 0, r.output

    def samples(folder: Path) -> dict:
        with (folder / "samples.csv").open(newline="") as f:
            return {(x["clip"], x["condition"], x["method"]): x for x in csv.DictReader(f)}

    one, split = samples(tmp_path / "one"), samples(tmp_path / "split")
    assert one.keys() == split.keys() and len(one) == 12
    for k in one:
        for col in ("AI", "AD", "FF", "MM", "pointing" if "pointing" in one[k] else "EPG"):
            if one[k].get(col):
                assert float(one[k][col]) == pytest.approx(float(split[k][col]), abs=1e-5), (k, col)
    with (tmp_path / "split" / "summary.csv").open(newline="") as f:
        assert {int(x["n"]) for x in csv.DictReader(f) if x["metric"] == "AI"} == {6}
    assert not list((tmp_path / "split").glob("samples.*rank*.csv"))
