"""Results do not depend on how a run was carried out: train --resume after kill -9 is bit-exact,
text embeddings do not depend on the batch, and evaluate gives the same summary under torchrun."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.fixtures_data import make_esc50
from tests.helpers_runs import REPO


# -- train --resume after kill -9 is bit-exact -------------------------------------------------
@pytest.mark.slow
def test_train_resume_after_kill_is_bit_exact(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "lmaczs_cli",
        "train",
        "--clap",
        "small",
        "--data",
        "synth",
        "--synth-scenes",
        "64",
        "--val-size",
        "8",
        "--steps",
        "8",
        "--save-every",
        "2",
        "--val-every",
        "4",
        "--batch-size",
        "4",
        "--num-workers",
        "2",
        "--log-every",
        "1",
        "--quiet",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run([*args, "--out", str(tmp_path / "a")], check=True, env=env, timeout=600)
    p = subprocess.Popen([*args, "--out", str(tmp_path / "b")], env=env)
    log = tmp_path / "b" / "log.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill between two checkpoints (saved at 2, 4, ...)
        steps = [json.loads(x)["step"] for x in log.read_text().splitlines()] if log.exists() else []
        if steps and max(steps) >= 5:
            break
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert torch.load(tmp_path / "b" / "latest.pt", weights_only=True)["train_state"]["step"] in (4, 6)
    subprocess.run([*args, "--out", str(tmp_path / "b"), "--resume"], check=True, env=env, timeout=600)
    a = torch.load(tmp_path / "a" / "latest.pt", weights_only=True)["decoder"]
    b = torch.load(tmp_path / "b" / "latest.pt", weights_only=True)["decoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_text_embeddings_do_not_depend_on_the_batch() -> None:
    import lmaczs_cli

    m = lmaczs_cli.load_model("small", device="cpu")
    one = m.embed_text(["this is a sound of beep"])[0]
    m.clear_text_cache()
    many = m.embed_text(["rain falls", "this is a sound of beep", "a dog", "bells ring twice"])[1]
    assert torch.equal(one, many)


# -- bootstrap CIs do not depend on the number of ranks ----------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_evaluate_under_torchrun_gives_the_same_summary(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    args = [
        "evaluate",
        "--dataset",
        "esc50",
        "--data-root",
        str(root),
        "--method",
        "gradcam",
        "--clap",
        "fake",
        "--device",
        "cpu",
        "--batch-size",
        "3",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "tests.fake_model", *args, "--out", str(tmp_path / "one")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            "-m",
            "tests.fake_model",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "one" / "summary.csv").read_bytes() == (tmp_path / "two" / "summary.csv").read_bytes()
    assert not list((tmp_path / "two").glob("samples.rank*"))
