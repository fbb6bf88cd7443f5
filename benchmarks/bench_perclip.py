"""Per-clip LMAC-ZS (no decoder): what it costs per (clip, prompt), per model, and what its budget buys.

Run: ``python benchmarks/bench_perclip.py [--models small,laion-htsat-tiny,...] [--cost-steps 20]
[--curve 25,50,100,150,300] [--scenes 30] [--device cpu] [--threads N]``.

*Cost*: for each model (random weights, so nothing is downloaded; each in its own subprocess),
one encode of one clip (the model's window, batch 1) is timed against per-clip LMAC-ZS on that
clip and one prompt run for ``--cost-steps`` steps without early stopping. Printed: seconds per
step and per step as a ratio to one encode (a step is two encodes with their backward), and the
ratio at the default budget (``PerClipLMACZS().steps``, the most a pair can cost; early
stopping ends most pairs sooner).

*Curve*: on the bundled small model (trained weights, held-out synthetic scenes of
``jobs/groundtruth.py``), each step budget's localisation (pointing game, its gain over the
all-ones mask, pointing at events that are not the loudest, recall, faithfulness s~ - s) and
its seconds per pair, beside the bundled decoder's. The default budget is read from it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("small", "laion-htsat-tiny", "ms-clap-2022", "ms-clap-2023", "hf-htsat-tiny")
REPO = Path(__file__).resolve().parents[1]


def cost_one(name: str, steps: int, device: str) -> dict:
    """Seconds of one encode and of ``steps`` per-clip steps for model ``name`` (random weights)."""
    import torch
    import torch.nn.functional as F

    from lmaczs_cli.explainers.perclip import PerClipLMACZS
    from lmaczs_cli.models.registry import create_model

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = create_model(name, ckpt="random", device=device).to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    wave = 0.1 * torch.randn(1, model.window_samples, device=dev)
    with torch.no_grad():
        mag, _ = model.spectrogram(wave)
        enc = model.encode(mag)
    text = F.normalize(torch.randn(1, enc.embedding.shape[-1], device=dev), dim=-1)

    def encode() -> None:
        with torch.no_grad():
            model.encode(mag)
        sync()

    encode()
    encodes = []
    for _ in range(5):
        t0 = time.perf_counter()
        encode()
        encodes.append(time.perf_counter() - t0)
    ex = PerClipLMACZS(steps=steps, patience=steps + 1)
    t0 = time.perf_counter()
    ex.compute_masks(model, mag, text, enc)
    sync()
    total = time.perf_counter() - t0
    encode_s = statistics.median(encodes)
    step_s = total / ex.last_steps
    budget = PerClipLMACZS().steps
    return {"model": name, "device": device, "threads": torch.get_num_threads(),
            "window_s": model.window_samples / model.sample_rate, "encode_s": encode_s,
            "steps": ex.last_steps, "step_s": step_s, "step_over_encode": step_s / encode_s,
            "budget": budget, "budget_over_encode": budget * step_s / encode_s}


def curve(budgets: list[int], n: int, device: str) -> list[dict]:
    """Ground-truth metrics of per-clip LMAC-ZS at each step budget (and the bundled decoder)."""
    import torch

    from lmaczs_cli.data.synthetic import SyntheticDataset
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.explainers.perclip import PerClipLMACZS
    from lmaczs_cli.jobs.groundtruth import EVAL_SEED, groundtruth_metrics
    from lmaczs_cli.models.registry import create_model

    model = create_model("small", device=device)
    scenes = SyntheticDataset(n, seed=EVAL_SEED, split="test")
    runs: list[tuple[str, object]] = [("decoder (bundled)", create_explainer("lmaczs", model))]
    runs += [(f"per-clip {b} steps", PerClipLMACZS(steps=b)) for b in budgets]
    rows = []
    for label, ex in runs:
        t0 = time.perf_counter()
        m = groundtruth_metrics(model, ex, scenes)
        seconds = time.perf_counter() - t0
        rows.append({"method": label, "seconds_per_scene": seconds / n, "threads": torch.get_num_threads(),
                     **{k: m[k] for k in ("pointing", "pointing_gain", "pointing_not_loudest",
                                          "precision", "recall", "mask_mean_present", "mae")}})
    return rows


def _sub(args: list[str]) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"    skipped: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--cost-steps", type=int, default=20, help="timed per-clip steps per model")
    ap.add_argument("--curve", default="25,50,100,150,300", help="step budgets for the curve ('' skips)")
    ap.add_argument("--scenes", type=int, default=30, help="held-out scenes for the curve")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(cost_one(args.one, args.cost_steps, args.device)))
        return
    print(f"per-clip LMAC-ZS cost per (clip, prompt), random weights, {args.device}", flush=True)
    for name in [m for m in args.models.split(",") if m]:
        d = _sub(["--one", name, "--cost-steps", str(args.cost_steps), "--device", args.device,
                  "--threads", str(args.threads)])
        if d is None:
            continue
        print(f"  {name:18s} encode {1e3 * d['encode_s']:8.1f} ms ({d['window_s']:.0f} s window)  "
              f"step {1e3 * d['step_s']:8.1f} ms = {d['step_over_encode']:5.1f} encodes  "
              f"budget {d['budget']} steps = {d['budget_over_encode']:6.0f} encodes "
              f"({d['budget'] * d['step_s']:.0f} s)  threads {d['threads']}", flush=True)
        print("    " + json.dumps(d), flush=True)
    if args.curve:
        budgets = [int(b) for b in args.curve.split(",")]
        print(f"quality against budget: small model, {args.scenes} held-out scenes", flush=True)
        print("  | method | s per scene | pointing | gain | not loudest | precision | recall |")
        print("  |---|---|---|---|---|---|---|")
        for r in curve(budgets, args.scenes, args.device):
            print(f"  | {r['method']} | {r['seconds_per_scene']:.2f} | {r['pointing']:.3f} | "
                  f"{r['pointing_gain']:+.3f} | {r['pointing_not_loudest']:.3f} | {r['precision']:.2f} | "
                  f"{r['recall']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
