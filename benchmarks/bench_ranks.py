"""One process against torchrun ranks on one machine: wall time and CPU time of `explain` and `train`.

Run: ``python benchmarks/bench_ranks.py [--clips 24] [--steps 12]`` (CPU, gloo; the bundled
small model and its synthetic world, so nothing is downloaded).

Each case is a fresh ``python -m lmaczs_cli`` (or ``torchrun -m lmaczs_cli``) process tree:

- ``1 proc x 1 thread``   ``--threads 1``
- ``1 proc x 2 threads``  ``--threads 2``
- ``2 ranks x 1 thread``  ``torchrun --nproc_per_node 2 ... --threads 1``

Printed: wall seconds, CPU seconds of the whole tree (user + system), and CPU / wall (how many
cores the case kept busy). Start-up (imports, model build) is included: it is what a job pays.
"""

from __future__ import annotations

import argparse
import atexit
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: a temp folder for the runs' own decoder registry
SCRATCH = Path(tempfile.mkdtemp(prefix="bench-ranks-registry-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> tuple[float, float]:
    # the runs' own decoder registry: a benchmark's `train` must not become the user's default decoder
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "LMACZS_DECODER_CACHE": str(SCRATCH / "decoders")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cases(args: list[str], out: Path) -> dict[str, list[str]]:
    py = [sys.executable, "-m", "lmaczs_cli"]
    tr = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
          "--master_addr", "127.0.0.1", "--master_port", str(_port()), "-m", "lmaczs_cli"]
    return {
        "1 proc x 1 thread": [*py, *args, "--threads", "1", "--out", str(out / "a")],
        "1 proc x 2 threads": [*py, *args, "--threads", "2", "--out", str(out / "b")],
        "2 ranks x 1 thread": [*tr, *args, "--threads", "1", "--out", str(out / "c")],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ranks-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    _run([sys.executable, "-m", "lmaczs_cli", "synth", "--n", str(args.clips), "--seed", "5", "--out",
          str(tmp / "synth"), "--quiet"])
    explain = ["explain", str(tmp / "synth" / "audio"), "--clap", "small", "--labels", "synth",
               "--top-k", "2", "--quiet"]
    train = ["train", "--clap", "small", "--data", "synth", "--synth-scenes", "64", "--val-size", "8",
             "--steps", str(args.steps), "--batch-size", "8", "--num-workers", "0", "--quiet"]
    jobs = {f"explain ({args.clips} clips x 2 prompts)": explain,
            f"train ({args.steps} steps, batch 8)": train}
    print(f"one process vs torchrun ranks, CPU ({os.cpu_count()} cores)")
    for job, jargs in jobs.items():
        for case, cmd in _cases(jargs, tmp / job.split()[0]).items():
            wall, cpu = _run(cmd)
            busy = cpu / wall
            print(f"  {job:34s} {case:20s} wall {wall:6.1f} s  cpu {cpu:6.1f} s  cores busy {busy:4.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
