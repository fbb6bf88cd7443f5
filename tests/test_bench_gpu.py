"""benchmarks/bench_gpu.py runs on a machine without CUDA, skipping every CUDA part with a line saying so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the benchmark really runs (minutes)")
def test_bench_gpu_skips_every_cuda_part_on_cpu() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_gpu
    finally:
        sys.path.pop(0)
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--quick"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for model in bench_gpu.MODELS:
        for part in bench_gpu.PARTS:
            assert f"{model}: {part}: skipped (CUDA is not available on this machine)" in lines
    assert len(lines) == len(bench_gpu.MODELS) * len(bench_gpu.PARTS)
