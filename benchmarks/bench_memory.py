"""Peak memory of ``lmaczs explain`` against clip length: long clips are streamed, so it stays flat.

Run: ``python benchmarks/bench_memory.py [--scratch DIR] [--minutes 1,60] [--inmemory-minutes 1,5]``.

Synthesises clips in a scratch folder outside the repository (default: a temp folder,
removed at the end): 16 kHz mono (the bundled example scene tiled) and, when the
ESC-50 mini set is present, 44.1 kHz stereo (a real ESC-50 clip tiled, the second
channel reversed). Each case runs ``lmaczs explain --clap small`` (bundled offline model,
two prompts, ``--residual --save-mask``) in a fresh process; its peak RSS is that
process's own ``ru_maxrss`` (``os.wait4``). Prints peak RSS and wall time per case, and
the ratio of the longest to the shortest streamed clip (goal ≤ 1.5). The in-memory path
(streaming switched off) is measured at ``--inmemory-minutes`` for reference.
Wall times are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "lmaczs_cli" / "assets" / "examples" / "scene.wav"
ESC50_CLIP = REPO.parent / "shared" / "data" / "esc50-mini" / "audio" / "2-104168-A-32.wav"
#: runs the CLI with streaming switched off (the in-memory path, for reference)
_NO_STREAMING = ("import sys, lmaczs_cli.streaming.engine as e; e.STREAM_MIN_WINDOWS = 10**9; "
                 "from lmaczs_cli.cli.app import main; sys.argv[0] = 'lmaczs'; main()")


def tile(src: Path, dst: Path, minutes: float, stereo: bool) -> Path:
    """Write ``src`` repeated to ``minutes`` (16-bit PCM, block by block) as ``dst``."""
    x, sr = sf.read(src, dtype="float32", always_2d=True)
    x = x.mean(1)
    if stereo:
        x = np.stack([x, x[::-1]], 1)
    total = int(minutes * 60 * sr)
    with sf.SoundFile(dst, "w", samplerate=sr, channels=2 if stereo else 1, subtype="PCM_16") as f:
        done = 0
        while done < total:
            part = x[: total - done]
            f.write(part)
            done += len(part)
    return dst


def run_case(clip: Path, out: Path, streaming: bool) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one ``lmaczs explain`` process."""
    head = [sys.executable, "-m", "lmaczs_cli"] if streaming else [sys.executable, "-c", _NO_STREAMING]
    cmd = [*head, "explain", str(clip), "--clap", "small", "--prompt", "dog barking",
           "--prompt", "rain falling", "--residual", "--save-mask", "--device", "cpu",
           "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output}")
    return usage.ru_maxrss / 1024.0, seconds  # Linux: kilobytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", type=Path, default=None, help="folder for clips and outputs (kept)")
    ap.add_argument("--minutes", default="1,60", help="streamed clip lengths (minutes)")
    ap.add_argument("--inmemory-minutes", default="1,5", help="in-memory reference lengths ('' to skip)")
    ap.add_argument("--sources", default="scene16k,esc44k", help="scene16k (mono) and/or esc44k (stereo)")
    args = ap.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="lmaczs-bench-memory-"))
    scratch.mkdir(parents=True, exist_ok=True)
    if REPO in scratch.resolve().parents:
        raise SystemExit(f"--scratch {scratch}: choose a folder outside the repository")
    streamed = [float(m) for m in args.minutes.split(",") if m]
    reference = [float(m) for m in args.inmemory_minutes.split(",") if m]
    sources = {"scene16k": (SCENE, False), "esc44k": (ESC50_CLIP, True)}
    try:
        for name in args.sources.split(","):
            src, stereo = sources[name]
            if not src.exists():
                print(f"{name}: {src} not found, skipped")
                continue
            peaks = {}
            for minutes, streaming in [(m, True) for m in streamed] + [(m, False) for m in reference]:
                clip = scratch / f"{name}_{minutes:g}min.wav"
                if not clip.exists():
                    tile(src, clip, minutes, stereo)
                path = "streamed" if streaming else "in-memory"
                out = scratch / f"out_{name}_{minutes:g}_{path}"
                rss, sec = run_case(clip, out, streaming)
                shutil.rmtree(out, ignore_errors=True)
                print(f"{name} {minutes:>5g} min {path:>9}: peak RSS {rss:6.0f} MiB, wall {sec:6.1f} s",
                      flush=True)
                if streaming:
                    peaks[minutes] = rss
            if len(peaks) > 1:
                lo, hi = min(peaks), max(peaks)
                print(f"{name}: peak RSS {hi:g} min / {lo:g} min = {peaks[hi] / peaks[lo]:.2f} (goal <= 1.5)")
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
