"""LMAC-ZS decoder training throughput and peak memory, per zero-shot model.

Run: ``python benchmarks/bench_train.py [--batch-size 4] [--steps 5] [--device cpu] [--threads N]``.

For each model (random weights, so nothing is downloaded), one optimiser step
is the full objective on B clips x B prompts (B^2 masked encodes with
gradients to the decoder) plus backward and AdamW. Each model runs in its own
subprocess so peak memory (max RSS on CPU, max allocated on CUDA) is its own.
Also printed: the decoder's mask time against a plain encode of the same
clips (the decoder is meant to cost well under one encode). A model whose code
is not importable is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("small", "laion-htsat-tiny")
REPO = Path(__file__).resolve().parents[1]


def _best(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_one(name: str, batch: int, steps: int, device: str, domain: str) -> dict:
    """Measure one model in this process; returns a JSON-able dict."""
    import torch
    import torch.nn.functional as F

    from lmaczs_cli.explainers.decoder import MaskDecoder
    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.models.registry import create_model
    from lmaczs_cli.objective import LossWeights, lmaczs_objective

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = create_model(name, ckpt="random", device=device).to(dev)
    wave = 0.1 * torch.randn(batch, model.window_samples, device=dev)
    with torch.no_grad():
        mag, _ = model.spectrogram(wave)
        enc = model.encode(mag)
    text = F.normalize(torch.randn(batch, enc.embedding.shape[-1], device=dev), dim=-1)
    decoder = MaskDecoder.for_model(model, domain)
    ex = LMACZS(decoder)
    opt = torch.optim.AdamW(decoder.parameters(), lr=1e-3)
    own = torch.arange(batch, device=dev)

    def step() -> None:
        res = lmaczs_objective(model, mag, text, own, lambda m, e, t: ex.pair_masks(model, m, t, e),
                               LossWeights())
        opt.zero_grad(set_to_none=True)
        res.total.backward()
        opt.step()

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_s = _best(step, steps, sync)
    with torch.no_grad():  # interleaved, so load from other processes hits both alike
        def encode() -> object:
            return model.encode(mag)

        def masks() -> object:
            return ex.masks(model, mag, text, enc)

        pairs = [(_best(encode, 1, sync), _best(masks, 1, sync)) for _ in range(max(9, steps))]
    encode_s = statistics.median(e for e, _ in pairs)
    mask_s = statistics.median(m for _, m in pairs)
    ratio = statistics.median(m / e for e, m in pairs)
    peak_mb = (
        torch.cuda.max_memory_allocated() / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": name, "device": device, "threads": torch.get_num_threads(), "batch": batch,
        "pairs": batch * batch, "domain": domain, "grid": [model.n_freqs, model.n_frames],
        "decoder_params": sum(p.numel() for p in decoder.parameters()),
        "step_s": step_s, "samples_per_s": batch / step_s,
        "encode_ms_per_clip": 1e3 * encode_s / batch, "mask_ms_per_pair": 1e3 * mask_s / batch,
        "mask_over_encode": ratio, "peak_mb": peak_mb,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (best of)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--domain", default="stft", choices=["stft", "mel"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(bench_one(args.one, args.batch_size, args.steps, args.device, args.domain)))
        return
    print(f"LMAC-ZS training step: B={args.batch_size} clips x B prompts, {args.domain} masks, "
          f"{args.device}", flush=True)
    for name in args.models.split(","):
        cmd = [sys.executable, __file__, "--one", name, "--batch-size", str(args.batch_size),
               "--steps", str(args.steps), "--device", args.device, "--domain", args.domain,
               "--threads", str(args.threads)]
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            print(f"  {name:18s} skipped: {last}")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"  {name:18s} {d['samples_per_s']:7.2f} clips/s  step {d['step_s']:.3f} s  "
              f"peak {d['peak_mb']:.0f} MB  mask/encode {d['mask_over_encode']:.2f} "
              f"({d['mask_ms_per_pair']:.1f} vs {d['encode_ms_per_clip']:.1f} ms)  "
              f"decoder {d['decoder_params'] / 1e3:.0f}k params  threads {d['threads']}")
        print("    " + json.dumps(d))


if __name__ == "__main__":
    main()
