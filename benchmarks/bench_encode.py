"""Encode speed of the zero-shot models, and CLI start-up time.

Run: ``python benchmarks/bench_encode.py [--repeats N] [--device cpu|cuda]``.
Absolute times depend on the machine; each section also prints ratios against
a reference measured in the same process, which are what to compare across runs.
Offline: LAION-CLAP (fusion too), the Hugging Face ClapModel and PE-Audio run with seeded random
weights (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _timings(fns: dict[str, Callable[[], object]], repeats: int,
             sync: Callable[[], None] = lambda: None) -> dict[str, tuple[float, float]]:
    """(min, median) seconds per function; runs are interleaved round-robin so that
    load from other processes hits every candidate alike (min is the robust figure)."""
    for fn in fns.values():  # warm-up (allocations, lazy init)
        fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: (min(v), statistics.median(v)) for k, v in times.items()}


def _random_model(name: str, device: str) -> tuple[Any, float]:
    """``--clap name --clap-ckpt random`` built quietly (the header says the weights are random),
    and the seconds the build took."""
    from lmaczs_cli.models.registry import create_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = create_model(name, ckpt="random", device=device)
    return model, time.perf_counter() - t0


def _synchroniser(dev: Any) -> Callable[[], object]:
    """What makes a timing wait for the device: CUDA's synchronize, else nothing."""
    import torch

    return torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)


def bench_laion(repeats: int, device: str) -> None:
    """LAION HTSAT-tiny: our front end (STFT -> log-mel -> HTSAT -> projection) per 10 s clip."""
    import numpy as np
    import torch

    from lmaczs_cli.models.laion.reference import package_module, package_reference

    model, build_s = _random_model("laion-htsat-tiny", device)
    dev = torch.device(device)
    sync = _synchroniser(dev)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(480000)).astype(np.float32) for _ in range(4)]
    waves = torch.stack([model.fit_window(torch.from_numpy(c)).wave for c in clips]).to(dev)

    def ours(b: int) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return model.encode(model.spectrogram(waves[:b])[0]).embedding
        return run

    def ours_grad() -> object:
        mag = model.spectrogram(waves[:1])[0].requires_grad_(True)
        model.encode(mag).embedding.sum().backward()
        return mag.grad

    pkg = package_module(model, package_reference(), tokenizer=None)

    def package(b: int) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return pkg.get_audio_embedding_from_data(clips[:b])
        return run

    t = _timings({"ours1": ours(1), "ours4": ours(4), "pkg1": package(1), "pkg4": package(4),
                  "grad1": ours_grad}, repeats, sync)
    per_clip = {k: (lo / int(k[-1]), med / int(k[-1])) for k, (lo, med) in t.items()}
    o1, o4, p1, p4, g1 = (per_clip[k][0] for k in ("ours1", "ours4", "pkg1", "pkg4", "grad1"))
    print(f"laion-htsat-tiny on {device} (torch threads {torch.get_num_threads()}), "
          f"build {build_s:.1f} s; per 10 s clip, min (median) of {repeats} interleaved runs:")

    def fmt(k: str) -> str:
        return f"{per_clip[k][0] * 1e3:7.1f} ({per_clip[k][1] * 1e3:7.1f}) ms"

    print(f"  ours     B=1 {fmt('ours1')}   B=4 {fmt('ours4')}   B=4/B=1 {o4 / o1:.2f}")
    print(f"  package  B=1 {fmt('pkg1')}   B=4 {fmt('pkg4')}   B=4/B=1 {p4 / p1:.2f}")
    print(f"  ours/package  B=1 {o1 / p1:.2f}   B=4 {o4 / p4:.2f}")
    print(f"  ours fwd+bwd to |X| B=1 {fmt('grad1')}   fwd+bwd/fwd {g1 / o1:.2f}")


def bench_hf(repeats: int, device: str) -> None:
    """Hugging Face ClapModel (hf-htsat-tiny) per 10 s clip: our front end vs transformers' own
    ClapFeatureExtractor + get_audio_features, and vs the LAION backend in the same process."""
    import numpy as np
    import torch

    from lmaczs_cli.models.registry import create_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        hf = create_model("hf-htsat-tiny", ckpt="random", device=device)
        build_s = time.perf_counter() - t0
        laion = create_model("laion-htsat-tiny", ckpt="random", device=device)
    from transformers import ClapFeatureExtractor

    from lmaczs_cli.models.hf.configs import UNFUSED_EXTRACTOR

    fe = ClapFeatureExtractor(**UNFUSED_EXTRACTOR)
    dev = torch.device(device)
    sync = _synchroniser(dev)
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(480000)).astype(np.float32) for _ in range(4)]

    def encoder(model, b: int) -> Callable[[], object]:
        waves = torch.stack([model.fit_window(torch.from_numpy(c)).wave for c in clips[:b]]).to(dev)

        def run() -> object:
            with torch.no_grad():
                return model.encode(model.spectrogram(waves)[0]).embedding
        return run

    def transformers_path(b: int) -> Callable[[], object]:
        def run() -> object:
            inputs = fe(clips[:b], sampling_rate=48000, return_tensors="pt").to(dev)
            with torch.no_grad():
                return hf.clap.get_audio_features(**inputs)
        return run

    def grad() -> object:
        wave = hf.fit_window(torch.from_numpy(clips[0])).wave.to(dev)
        mag = hf.spectrogram(wave[None])[0].requires_grad_(True)
        hf.encode(mag).embedding.sum().backward()
        return mag.grad

    t = _timings({"hf1": encoder(hf, 1), "hf4": encoder(hf, 4), "tf1": transformers_path(1),
                  "tf4": transformers_path(4), "laion1": encoder(laion, 1), "laion4": encoder(laion, 4),
                  "grad1": grad}, repeats, sync)
    per_clip = {k: (lo / int(k[-1]), med / int(k[-1])) for k, (lo, med) in t.items()}

    def fmt(k: str) -> str:
        return f"{per_clip[k][0] * 1e3:7.1f} ({per_clip[k][1] * 1e3:7.1f}) ms"

    lo = {k: v[0] for k, v in per_clip.items()}
    print(f"hf-htsat-tiny on {device} (torch threads {torch.get_num_threads()}), build {build_s:.1f} s; "
          f"per 10 s clip, min (median) of {repeats} interleaved runs:")
    print(f"  ours          B=1 {fmt('hf1')}   B=4 {fmt('hf4')}")
    print(f"  transformers  B=1 {fmt('tf1')}   B=4 {fmt('tf4')}   (numpy extractor + get_audio_features)")
    print(f"  laion ours    B=1 {fmt('laion1')}   B=4 {fmt('laion4')}")
    print(f"  ours/transformers  B=1 {lo['hf1'] / lo['tf1']:.2f}   B=4 {lo['hf4'] / lo['tf4']:.2f}")
    print(f"  hf/laion           B=1 {lo['hf1'] / lo['laion1']:.2f}   B=4 {lo['hf4'] / lo['laion4']:.2f}")
    print(f"  ours fwd+bwd to |X| B=1 {fmt('grad1')}   fwd+bwd/fwd {lo['grad1'] / lo['hf1']:.2f}")


def bench_msclap(repeats: int, device: str, version: str = "2022") -> None:
    """MS-CLAP: our front end (|STFT| -> log-mel -> encoder -> projection) per window, against
    the upstream module's own ``audio_encoder`` forward (torchlibrosa STFT), what
    ``CLAPWrapper._get_audio_embeddings`` runs."""
    import torch


    model, build_s = _random_model(f"ms-clap-{version}", device)
    dev = torch.device(device)
    sync = _synchroniser(dev)
    g = torch.Generator().manual_seed(0)
    waves = (0.1 * torch.randn(4, model.window_samples, generator=g)).to(dev)

    def ours(b: int) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return model.encode(model.spectrogram(waves[:b])[0]).embedding
        return run

    def package(b: int) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return model.clap.audio_encoder(waves[:b])[0]
        return run

    def ours_grad() -> object:
        mag = model.spectrogram(waves[:1])[0].requires_grad_(True)
        model.encode(mag).embedding.sum().backward()
        return mag.grad

    t = _timings({"ours1": ours(1), "ours4": ours(4), "pkg1": package(1), "pkg4": package(4),
                  "grad1": ours_grad}, repeats, sync)
    per_clip = {k: (lo / int(k[-1]), med / int(k[-1])) for k, (lo, med) in t.items()}
    o1, o4, p1, p4, g1 = (per_clip[k][0] for k in ("ours1", "ours4", "pkg1", "pkg4", "grad1"))
    print(f"ms-clap-{version} on {device} (torch threads {torch.get_num_threads()}), build "
          f"{build_s:.1f} s; per {model.window_seconds:g} s clip, min (median) of {repeats} runs:")

    def fmt(k: str) -> str:
        return f"{per_clip[k][0] * 1e3:7.1f} ({per_clip[k][1] * 1e3:7.1f}) ms"

    print(f"  ours     B=1 {fmt('ours1')}   B=4 {fmt('ours4')}   B=4/B=1 {o4 / o1:.2f}")
    print(f"  package  B=1 {fmt('pkg1')}   B=4 {fmt('pkg4')}   B=4/B=1 {p4 / p1:.2f}")
    print(f"  ours/package  B=1 {o1 / p1:.2f}   B=4 {o4 / p4:.2f}")
    print(f"  ours fwd+bwd to |X| B=1 {fmt('grad1')}   fwd+bwd/fwd {g1 / o1:.2f}")


def bench_fusion(repeats: int, device: str) -> None:
    """LAION fusion (laion-htsat-tiny-fusion): one 10 s window (``encode``) and a whole 30 s clip as the
    model sees it (``encode_fused``: shrunk clip + 3 crops), against non-fusion laion-htsat-tiny's
    10 s window in the same process; fwd+bwd of the fused 30 s clip (what an s~ gradient costs)."""
    import torch

    from lmaczs_cli.models.registry import create_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        fused = create_model("laion-htsat-tiny-fusion", ckpt="random", device=device)
        build_s = time.perf_counter() - t0
        plain = create_model("laion-htsat-tiny", ckpt="random", device=device)
    dev = torch.device(device)
    sync = _synchroniser(dev)
    g = torch.Generator().manual_seed(0)
    clip = (0.1 * torch.randn(30 * fused.sample_rate, generator=g)).to(dev)
    window = fused.fit_window(clip[: fused.window_samples]).wave[None]

    def window_of(model) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return model.encode(model.spectrogram(window)[0]).embedding
        return run

    def whole() -> object:
        with torch.no_grad():
            return fused.encode_fused(fused.spectrogram(fused.whole_clip_wave(clip)[None])[0]).embedding

    def whole_grad() -> object:
        mag = fused.spectrogram(fused.whole_clip_wave(clip)[None])[0].requires_grad_(True)
        fused.encode_fused(mag).embedding.sum().backward()
        return mag.grad

    t = _timings({"win": window_of(fused), "plain": window_of(plain), "whole": whole, "grad": whole_grad},
                 repeats, sync)

    def fmt(k: str) -> str:
        return f"{t[k][0] * 1e3:7.1f} ({t[k][1] * 1e3:7.1f}) ms"

    print(f"laion-htsat-tiny-fusion on {device} (torch threads {torch.get_num_threads()}), build "
          f"{build_s:.1f} s; min (median) of {repeats} interleaved runs, B=1:")
    print(f"  10 s window (encode)            {fmt('win')}   /non-fusion {t['win'][0] / t['plain'][0]:.2f}")
    print(f"  non-fusion laion-htsat-tiny     {fmt('plain')}")
    print(f"  30 s clip fused (encode_fused)  {fmt('whole')}   /window {t['whole'][0] / t['win'][0]:.2f}")
    print(f"  30 s fused fwd+bwd to |X|       {fmt('grad')}   fwd+bwd/fwd {t['grad'][0] / t['whole'][0]:.2f}")


def bench_pe_audio(repeats: int, device: str) -> None:
    """PE-Audio (transformers PeAudioModel, default architecture, random weights): one 10 s window,
    forward and fwd+bwd to |X| (what per-clip LMAC-ZS and IG pay per step)."""
    import torch


    model, build_s = _random_model("pe-audio", device)
    dev = torch.device(device)
    sync = _synchroniser(dev)
    g = torch.Generator().manual_seed(0)
    wave = model.fit_window((0.1 * torch.randn(model.window_samples, generator=g)).to(dev)).wave[None]
    n_params = sum(p.numel() for p in model.parameters())

    def fwd() -> object:
        with torch.no_grad():
            return model.encode(model.spectrogram(wave)[0]).embedding

    def grad() -> object:
        mag = model.spectrogram(wave)[0].requires_grad_(True)
        model.encode(mag).embedding.sum().backward()
        return mag.grad

    t = _timings({"fwd": fwd} if FORWARD_ONLY else {"fwd": fwd, "grad": grad}, repeats, sync)
    print(f"pe-audio on {device} (torch threads {torch.get_num_threads()}), {n_params / 1e6:.0f} M "
          f"parameters, build {build_s:.1f} s; per {model.window_seconds:g} s window, min (median) of "
          f"{repeats} runs, B=1:")
    print(f"  encode          {t['fwd'][0] * 1e3:8.1f} ({t['fwd'][1] * 1e3:8.1f}) ms")
    if "grad" in t:
        print(f"  fwd+bwd to |X|  {t['grad'][0] * 1e3:8.1f} ({t['grad'][1] * 1e3:8.1f}) ms   "
              f"fwd+bwd/fwd {t['grad'][0] / t['fwd'][0]:.2f}")


def bench_cli_help(repeats: int, device: str) -> None:
    """Wall time of ``lmaczs --help`` against a bare interpreter start."""
    exe = shutil.which("lmaczs", path=str(Path(sys.executable).parent) + os.pathsep
                       + os.environ.get("PATH", ""))
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "lmaczs_cli", "--help"]
    env = dict(os.environ, NO_COLOR="1")

    def run(c: list[str]) -> Callable[[], object]:
        return lambda: subprocess.run(c, capture_output=True, check=True, env=env)

    t = _timings({"help": run(cmd), "python": run([sys.executable, "-c", "pass"]),
                  "torch": run([sys.executable, "-c", "import torch"])}, repeats)
    (h, hm), (py, _), (tt, _) = t["help"], t["python"], t["torch"]
    print(f"lmaczs --help: {h * 1e3:.0f} ms min ({hm * 1e3:.0f} median); bare python "
          f"{py * 1e3:.0f} ms, ratio {h / py:.1f}; `import torch` {tt * 1e3:.0f} ms, "
          f"ratio {h / tt:.2f}")


#: ``--forward-only``: skip pe-audio's fwd+bwd (many GB of memory for the 48 kHz codec's backward)
FORWARD_ONLY = False

BENCHES = {"help": bench_cli_help, "laion": bench_laion, "hf": bench_hf, "msclap": bench_msclap,
           "fusion": bench_fusion, "pe-audio": bench_pe_audio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    ap.add_argument("--forward-only", action="store_true", help="pe-audio: forward pass only (less memory)")
    args = ap.parse_args()
    global FORWARD_ONLY
    FORWARD_ONLY = args.forward_only
    for name in args.only.split(","):
        BENCHES[name.strip()](args.repeats, args.device)


if __name__ == "__main__":
    main()
