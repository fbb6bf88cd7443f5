"""The whole `lmaczs explain` job against its floor: how much beyond the model work do files cost?

Run: ``python benchmarks/bench_pipeline.py [--models small,laion-htsat-tiny] [--clips 20]
[--threads 1] [--repeats 2]``.

For each model (the bundled weights for ``small``, random weights otherwise; speed does not
depend on them), ``--clips`` clips of one model window each (noise plus tones, written as WAV
files at the model's rate) and one prompt, in one process, interleaved ``--repeats`` times:

- *floor*: what no implementation can skip per clip: one encode of the clip and one masked
  encode (batches of ``--batch``), the decoder's mask in between;
- the explain job (``run_explain`` with the model already built: decoding, model work,
  resynthesis, WAV and PNG, results.csv)
  with the files written in the model's thread (``writers=0``), by two writer threads (the
  default), and without maps (``--no-maps``).

Printed: seconds per clip and each job's ratio to the floor (issue goal: <= 2x on the bundled
model, <= 1.3x on LAION HTSAT-tiny).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def bench(name: str, n: int, batch: int, repeats: int) -> dict[str, float]:
    import numpy as np
    import soundfile as sf
    import torch

    from lmaczs_cli.api import load_explainer
    from lmaczs_cli.jobs.explain import ExplainConfig, run_explain
    from lmaczs_cli.models.registry import create_model
    from lmaczs_cli.runtime import RunOptions

    ckpt = None if name == "small" else "random"
    model = create_model(name) if ckpt is None else create_model(name, ckpt=ckpt)
    model.eval()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    rng = np.random.default_rng(0)
    sr, win = model.sample_rate, model.window_samples
    t = np.arange(win) / sr
    for i in range(n):
        wave = 0.05 * rng.standard_normal(win) + 0.3 * np.sin(2 * np.pi * (400 + 40 * i) * t)
        sf.write(tmp / f"c{i:03d}.wav", wave.astype(np.float32), sr, subtype="PCM_16")
    clips = sorted(tmp.glob("*.wav"))
    waves = torch.stack([torch.from_numpy(sf.read(c, dtype="float32")[0]) for c in clips])
    explainer = load_explainer("lmaczs", model, decoder=None) if ckpt is None else None
    text = model.embed_text(["a sound of a tone"])

    @torch.no_grad()
    def floor() -> None:
        for s in range(0, n, batch):
            mag, _ = model.spectrogram(waves[s : s + batch])
            enc = model.encode(mag)
            if explainer is not None:
                m = explainer.masks(model, mag, text.expand(mag.shape[0], -1), encoded=enc)
            else:  # a real CLAP has no bundled decoder: the floor is its two encodes
                m = torch.ones_like(mag)
            model.encode(m * mag)

    import warnings

    import lmaczs_cli.api as api

    warnings.simplefilter("ignore")  # random weights: said once in the header

    api.load_model = lambda *a, **k: model  # the job's own model build is not part of the comparison
    run = RunOptions(clap=name, clap_ckpt=ckpt, device="cpu", batch_size=batch)
    methods = ["lmaczs"] if ckpt is None else ["all-ones"]  # no decoder for random weights

    def job(writers: int, maps: bool) -> None:
        out = Path(tempfile.mkdtemp(prefix="bench-out-"))  # not below the inputs
        run_explain(ExplainConfig(inputs=[tmp], out=out, methods=methods, prompt=["a sound of a tone"],
                                  writers=writers, maps=maps, run=run))

    cases = {"floor": floor, "writers=0": lambda: job(0, True), "writers=2": lambda: job(2, True),
             "no maps": lambda: job(2, False)}
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) / n for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="small,laion-htsat-tiny")
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"explain job vs floor, {args.clips} clips x 1 prompt, cpu, {args.threads} torch thread(s)")
    for name in args.models.split(","):
        r = bench(name, args.clips, args.batch, args.repeats)
        f = r["floor"]
        cols = "  ".join(f"{k} {1e3 * v:7.1f} ms = {v / f:4.2f}x" for k, v in r.items() if k != "floor")
        print(f"  {name:18s} floor {1e3 * f:7.1f} ms/clip  {cols}", flush=True)


if __name__ == "__main__":
    main()
