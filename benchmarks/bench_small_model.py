"""Load and run times of the bundled small model (goal: weights load in <= 1 s after imports).

Run: ``python benchmarks/bench_small_model.py [--repeats N]``. Prints the import
time, the time to build the model from the bundled weights (min and median of
N loads), the first ``embed_text`` (loads the frozen MiniLM text tower once),
and encode speed for a batch of 5 s clips.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args()

    t0 = time.perf_counter()
    import numpy as np
    import torch

    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.models.small.model import load_small

    print(f"imports (torch, lmaczs_cli.models.small.model): {time.perf_counter() - t0:.2f} s")

    loads = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        model = load_small()
        loads.append(time.perf_counter() - t0)
    print(f"load_small() bundled weights: min {min(loads):.3f} s, "
          f"median {statistics.median(loads):.3f} s (goal <= 1 s)")

    t0 = time.perf_counter()
    model.embed_text(world.canonical_prompts())
    print(f"first embed_text (loads MiniLM): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    model.embed_text([f"a sound number {i}" for i in range(32)])
    print(f"embed_text, 32 new prompts: {time.perf_counter() - t0:.3f} s")

    wave = torch.from_numpy(
        np.stack([world.generate_scene(0, i, with_masks=False).wave for i in range(a.batch)])
    )
    times = []
    with torch.no_grad():
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            model.encode(model.spectrogram(wave)[0])
            times.append(time.perf_counter() - t0)
    per = min(times) / a.batch * 1000
    print(f"spectrogram + encode, batch {a.batch}: {per:.1f} ms per 5 s clip "
          f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
