"""Cost of explaining, as ratios against one plain encode measured in the same process and batch.

Run: ``python benchmarks/bench_explain.py [--models small,laion,ms-clap-2022,hf] [--batch 4]
[--repeats 3]`` (any registered model name; ``laion`` is laion-htsat-tiny, ``hf`` hf-htsat-tiny).

For each model, with a batch of full-window clips (small: 5 s, LAION HTSAT-tiny: 10 s,
MS-CLAP 2022: 5 s, 2023: 7 s at 44.1 kHz; random weights where no checkpoint is
available — speed does not depend on the weights):

- mask / encode: LMAC-ZS masks (one encode + the decoder) ÷ one plain encode (goal ≤ 1.3)
- explain / encode: the explain engine with masked-similarity scoring (STFT, encode,
  decoder, masked encode) ÷ one plain encode (goal ≤ 2.5)
- each baseline's per-clip cost ÷ the LMAC-ZS mask cost (goal: IG-50 ≥ 20× and GradCAM
  more expensive than LMAC-ZS)
- peak RSS of the process;
- at the end, each model's encode time per clip and per second of audio against the
  first model's (same process, so the ratios hold across machines).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings
from collections.abc import Callable

import torch


def _time(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call; interleaved so machine load hits every candidate alike."""
    for fn in fns.values():
        fn()
    t: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            t[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in t.items()}


def _model(name: str):
    from lmaczs_cli.models.registry import create_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "small":
            return create_model("small")
        # text is a random tensor here, so no tokenizer is ever needed
        alias = {"laion": "laion-htsat-tiny", "hf": "hf-htsat-tiny"}
        return create_model(alias.get(name, name), ckpt="random")


def bench(name: str, batch: int, repeats: int, baselines: bool) -> tuple[float, float]:
    """Print the ratios for ``name``; return (encode s per clip, clip seconds)."""
    from lmaczs_cli.explainers.attribution import IntegratedGradientsExplainer, SmoothGradExplainer
    from lmaczs_cli.explainers.decoder import MaskDecoder
    from lmaczs_cli.explainers.gradcam import GradCAMExplainer
    from lmaczs_cli.explainers.lmaczs import LMACZS
    from lmaczs_cli.explaining import ExplainEngine

    torch.manual_seed(0)
    model = _model(name)
    n = model.window_samples
    waves = 0.1 * torch.randn(batch, n)
    waves = torch.stack([model.fit_window(w).wave for w in waves])
    text = torch.nn.functional.normalize(torch.randn(batch, model.encode(
        model.spectrogram(waves[:1])[0]).embedding.shape[-1]), dim=-1)
    lmac = LMACZS(MaskDecoder.for_model(model).eval())
    engine = ExplainEngine(model, lmac, text, batch_size=batch, score=True)
    records = [{"path": f"clip{i}", "wave": waves[i], "orig_sample_rate": model.sample_rate,
                "orig_num_samples": n, "error": None} for i in range(batch)]

    def encode() -> object:
        with torch.no_grad():
            return model.encode(model.spectrogram(waves)[0])

    def mask() -> object:
        with torch.no_grad():
            mag = model.spectrogram(waves)[0]
            return lmac.masks(model, mag, text, encoded=model.encode(mag))

    def explain() -> object:
        return engine.run(records, lambda sims: [0])

    fns = {"encode": encode, "lmaczs_mask": mask, "explain_scored": explain}
    if baselines:
        mag = model.spectrogram(waves)[0]
        for key, ex in {"gradcam": GradCAMExplainer(False), "gradcam++": GradCAMExplainer(True),
                        "smoothgrad-25": SmoothGradExplainer(25), "ig-50": IntegratedGradientsExplainer(50)
                        }.items():
            fns[key] = (lambda ex=ex: ex.masks(model, mag, text))
    t = _time(fns, repeats)
    enc = t["encode"]
    print(f"\n{name}: batch {batch} x {model.window_seconds:g} s clips, "
          f"encode {1000 * enc / batch:.1f} ms/clip")
    print(f"  mask / encode           {t['lmaczs_mask'] / enc:6.2f}   (goal <= 1.3)")
    print(f"  explain+score / encode  {t['explain_scored'] / enc:6.2f}   (goal <= 2.5)")
    for key in ("gradcam", "gradcam++", "smoothgrad-25", "ig-50"):
        if key in t:
            print(f"  {key:<14} / lmaczs mask {t[key] / t['lmaczs_mask']:8.1f}x")
    print(f"  peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return enc / batch, float(model.window_seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="small,laion")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-baselines", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    names = [n.strip() for n in a.models.split(",")]
    per_clip = {n: bench(n, a.batch, a.repeats, not a.no_baselines) for n in names}
    (ref_t, ref_s), ref = per_clip[names[0]], names[0]
    print(f"\nencode cost against {ref} (same process):")
    for n, (t, secs) in per_clip.items():
        print(f"  {n:<16} {1000 * t:8.1f} ms/clip ({secs:g} s)  x{t / ref_t:5.2f} per clip  "
              f"x{(t / secs) / (ref_t / ref_s):5.2f} per second of audio")


if __name__ == "__main__":
    main()
