"""The whole `lmaczs explain` job against its floor: how much beyond the model work do files cost?

Run: ``python benchmarks/bench_pipeline.py [--models small,laion-htsat-tiny] [--clips 20]
[--threads 1] [--repeats 2] [--split]``.

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
model, <= 1.3x on LAION HTSAT-tiny), and the CPU time per clip of the whole process (all threads):
on a machine whose other cores are busy, the writer threads cannot overlap with the model and the
wall time approaches the CPU time. ``--split``: where a clip's time goes, each part timed alone in
one thread (the model's work in ``explain_many``, resynthesis, the WAV, the map, the row).
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _scratch(prefix: str) -> Path:
    """A temp folder removed when the benchmark exits (each explain run writes hundreds of MB)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def bench(name: str, n: int, batch: int, repeats: int, split: bool = False
          ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per clip: wall seconds and process CPU seconds of each case, and (``split``) the parts."""
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
    tmp = _scratch(prefix="bench-pipeline-")
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
        out = _scratch(prefix="bench-out-")  # not below the inputs
        run_explain(ExplainConfig(inputs=[tmp], out=out, methods=methods, prompt=["a sound of a tone"],
                                  writers=writers, maps=maps, run=run))

    cases = {"floor": floor, "writers=0": lambda: job(0, True), "writers=2": lambda: job(2, True),
             "no maps": lambda: job(2, False)}
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    parts = _split(model, explainer, clips, batch) if split and explainer is not None else {}
    return ({k: statistics.median(v) / n for k, v in times.items()},
            {k: statistics.median(v) / n for k, v in cpu.items()}, parts)


def _split(model, explainer, clips: list[Path], batch: int) -> dict[str, float]:
    """Seconds per clip of each part of explain, one after the other in this thread."""
    from lmaczs_cli.api import explain_many
    from lmaczs_cli.audio import wav_subtype_for, within_full_scale, write_wav
    from lmaczs_cli.jobs.explain import _row
    from lmaczs_cli.provenance import RunRecord
    from lmaczs_cli.render import render_map
    from lmaczs_cli.runtime import RunOptions

    record = RunRecord("explain", model, {explainer.name: explainer}, {}, RunOptions(clap="small"))
    out = _scratch(prefix="bench-split-")
    t: dict[str, float] = dict.fromkeys(("model", "resynthesis", "wav", "map", "row"), 0.0)
    t0 = time.perf_counter()
    done = [e for r in explain_many(explainer, clips, ["a sound of a tone"], batch_size=batch)
            for e in r.explanations]
    t["model"] = time.perf_counter() - t0
    for i, e in enumerate(done):
        t0 = time.perf_counter()
        wave = within_full_scale(e.waveform())
        t1 = time.perf_counter()
        wav = write_wav(out / f"{i}.wav", wave, e.sample_rate, wav_subtype_for(e.clip))
        t2 = time.perf_counter()
        png = render_map(out / f"{i}.png", *e._map_args(), banner=e.banner(), activity=e.activity(),
                         segments=e.segments())
        t3 = time.perf_counter()
        _row(e, {"wav": wav, "png": png}, record)
        t4 = time.perf_counter()
        for k, a, b in (("resynthesis", t0, t1), ("wav", t1, t2), ("map", t2, t3), ("row", t3, t4)):
            t[k] += b - a
    return {k: v / len(clips) for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="small,laion-htsat-tiny")
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--split", action="store_true", help="also time each part of a clip alone")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"explain job vs floor, {args.clips} clips x 1 prompt, cpu, {args.threads} torch thread(s)")
    for name in args.models.split(","):
        r, cpu, parts = bench(name, args.clips, args.batch, args.repeats, args.split)
        f = r["floor"]
        cols = "  ".join(f"{k} {1e3 * v:7.1f} ms = {v / f:4.2f}x" for k, v in r.items() if k != "floor")
        print(f"  {name:18s} floor {1e3 * f:7.1f} ms/clip  {cols}", flush=True)
        cols = "  ".join(f"{k} {1e3 * v:7.1f} ms = {v / cpu['floor']:4.2f}x" for k, v in cpu.items()
                         if k != "floor")
        print(f"  {'(CPU, all threads)':18s} floor {1e3 * cpu['floor']:7.1f} ms/clip  {cols}", flush=True)
        if parts:
            cols = "  ".join(f"{k} {1e3 * v:.1f} ms" for k, v in parts.items())
            total = 1e3 * sum(parts.values())
            print(f"  {'(parts, one thread)':18s} {cols}  = {total:.1f} ms/clip", flush=True)


if __name__ == "__main__":
    main()
