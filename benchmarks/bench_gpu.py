"""One GPU, under five minutes: what training, explaining and evaluating cost on CUDA.

Run: ``python benchmarks/bench_gpu.py [--models laion-htsat-tiny,ms-clap-2022,hf-htsat-tiny] [--quick]``.

For each model (seeded random weights: speed does not depend on them), on ``cuda``:

- train: decoder training steps (the full LMAC-ZS objective over every clip x prompt pair of a
  batch of 8 clips), samples/s and peak GPU memory, at fp32 and at bf16 autocast;
- explain: clips/s of the explain engine (masks + masked similarity) at batch 1, 16 and 64;
- evaluate: clips/s of the evaluate metrics (mask, P_in, P_out) at batch 16 over 10 labels;
- bf16 vs fp32: the largest difference between the masks of the same clips;
- DDP: one training step of a one-process ``nccl`` group.

Without CUDA every part is skipped with a line saying so (the test suite runs it that way).
A model that is not registered (e.g. an optional backend) is skipped likewise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable

PARTS = (
    "train fp32",
    "train bf16",
    "explain b1",
    "explain b16",
    "explain b64",
    "evaluate b16",
    "mask bf16 vs fp32",
    "ddp nccl step",
)
MODELS = ("laion-htsat-tiny", "ms-clap-2022", "hf-htsat-tiny")


def _cuda_time(fn: Callable[[], object], repeats: int) -> float:
    import torch

    fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def _setup(name: str):
    import torch

    from lmaczs_cli.explainers.decoder import MaskDecoder
    from lmaczs_cli.models.registry import create_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(name, ckpt="random", device="cuda").to("cuda")
    decoder = MaskDecoder.for_model(model)
    g = torch.Generator(device="cpu").manual_seed(0)
    waves = 0.1 * torch.randn(64, model.window_samples, generator=g)
    return model, decoder, waves.to("cuda")


def bench_train(model, decoder, waves, precision: str, steps: int) -> tuple[float, float]:
    """samples/s and peak GiB of decoder training steps at batch 8."""
    import torch

    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.objective import LossWeights, lmaczs_objective
    from lmaczs_cli.runtime import autocast

    ex = LMACZS(decoder)
    opt = torch.optim.AdamW(decoder.parameters(), lr=1e-4)
    text = model.embed_text([f"a sound of thing {i}" for i in range(8)])
    own = torch.arange(8, device="cuda")
    mag, _ = model.spectrogram(waves[:8])

    def step() -> None:
        with autocast(torch.device("cuda"), precision):
            res = lmaczs_objective(
                model, mag, text, own, lambda m, e, t: ex.pair_masks(model, m, t, e), LossWeights()
            )
        opt.zero_grad(set_to_none=True)
        res.total.backward()
        opt.step()

    decoder.train()
    torch.cuda.reset_peak_memory_stats()
    sec = _cuda_time(step, steps)
    decoder.eval()
    return 8 / sec, torch.cuda.max_memory_allocated() / 2**30


def bench_explain(model, decoder, waves, batch: int, repeats: int) -> float:
    """clips/s of the explain engine (one prompt, scored)."""
    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.explaining import ExplainEngine

    ex = LMACZS(decoder)
    engine = ExplainEngine(model, ex, model.embed_text(["a dog barking"]), batch_size=batch)
    records = [
        {
            "path": f"c{i}",
            "wave": waves[i % len(waves)],
            "orig_sample_rate": model.sample_rate,
            "orig_num_samples": model.window_samples,
        }
        for i in range(batch)
    ]
    return batch / _cuda_time(lambda: engine.run(records, lambda s: [0]), repeats)


def bench_evaluate(model, decoder, waves, repeats: int) -> float:
    """clips/s of the evaluate metrics at batch 16 over 10 labels."""
    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.jobs.evaluate import _Evaluator

    labels = [f"thing {i}" for i in range(10)]
    ev = _Evaluator(
        model, {"lmaczs": LMACZS(decoder)}, model.embed_text(labels).float(), labels, "fp32", False
    )
    paths = [f"c{i}" for i in range(16)]
    return 16 / _cuda_time(
        lambda: ev.batch(waves[:16], paths, labels[:1] * 16, "clean", [None] * 16, set()), repeats
    )


def mask_precision_gap(model, decoder, waves) -> float:
    """Largest |mask_bf16 - mask_fp32| over 4 clips and 4 prompts."""
    import torch

    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.runtime import autocast

    ex = LMACZS(decoder)
    mag, _ = model.spectrogram(waves[:4])
    text = model.embed_text(["a dog", "rain", "a siren", "speech"])
    with torch.no_grad():
        m32 = ex.masks(model, mag, text)
        with autocast(torch.device("cuda"), "bf16"):
            m16 = ex.masks(model, mag, text)
    return float((m32 - m16.float()).abs().max())


def ddp_step(model, decoder, waves) -> float:
    """Seconds for one DDP training step in a one-process nccl group."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.objective import LossWeights, lmaczs_objective

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        net = DDP(decoder, device_ids=[torch.cuda.current_device()])
        ex = LMACZS(decoder, net)
        mag, _ = model.spectrogram(waves[:4])
        text = model.embed_text(["a dog", "rain", "a siren", "speech"])
        own = torch.arange(4, device="cuda")

        def step() -> None:
            res = lmaczs_objective(
                model, mag, text, own, lambda m, e, t: ex.pair_masks(model, m, t, e), LossWeights()
            )
            res.total.backward()

        return _cuda_time(step, 2)
    finally:
        dist.destroy_process_group()


def run_model(name: str, quick: bool) -> None:
    from lmaczs_cli.models.registry import list_models

    if name not in list_models():
        print(f"{name}: not registered here, skipped")
        return
    model, decoder, waves = _setup(name)
    steps = 2 if quick else 5
    for precision in ("fp32", "bf16"):
        sps, gib = bench_train(model, decoder, waves, precision, steps)
        print(f"{name}: train {precision}: {sps:.1f} samples/s, peak {gib:.2f} GiB")
    for batch in (1, 16, 64):
        print(
            f"{name}: explain batch {batch}: {bench_explain(model, decoder, waves, batch, steps):.1f} clips/s"
        )
    print(f"{name}: evaluate batch 16: {bench_evaluate(model, decoder, waves, steps):.1f} clips/s")
    print(f"{name}: max |mask_bf16 - mask_fp32| = {mask_precision_gap(model, decoder, waves):.4f}")
    print(f"{name}: one-process nccl DDP step: {ddp_step(model, decoder, waves) * 1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    a = ap.parse_args(argv)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    if not torch.cuda.is_available():
        for name in models:
            for part in PARTS:
                print(f"{name}: {part}: skipped (CUDA is not available on this machine)")
        return 0
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for name in models:
        t0 = time.perf_counter()
        run_model(name, a.quick)
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s")
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
