"""Throughput of the batch commands: clips/s per command and model, each beside its floor ratio.

Run: ``python benchmarks/bench_throughput.py [--models small,laion-htsat-tiny,ms-clap-2022]
[--clips 16] [--real-clips 8] [--threads 1] [--commands explain,explain-no-maps,baseline,classify,evaluate]``.

Per model (the bundled weights for ``small``; ``--clap-ckpt random`` for the others, with a
freshly initialised decoder for ``explain``: speed does not depend on the weights), ``--clips``
clips of 5 s (``--real-clips`` for real CLAPs; noise plus tones, 16-bit WAV at the model's rate)
and one prompt, in one process on the CPU, the model built once before the timings (start-up is
not part of a command's throughput). Each command runs once as a warm-up on two clips, then on all
of them:

- ``explain``: ``lmaczs explain`` (decoder masks, WAVs, map PNGs, results.csv); ``explain-no-maps``
  the same with ``--no-maps``;
- ``baseline``: ``lmaczs baseline --method gradcam``;
- ``classify``: ``lmaczs classify`` with ten candidate prompts (top 5);
- ``evaluate``: ``lmaczs evaluate --dataset synth`` on as many synthetic scenes (clean condition,
  LMAC-ZS; the bundled model only unless ``--commands`` names it for the others).

Printed per row: clips/s, seconds per clip and that as a ratio to the model's *floor*, what no
implementation can skip per explained clip: one encode of the clip, the decoder's mask and one
masked encode, in batches of ``--batch`` / 2 clips as explain groups them (``bench_pipeline.py``
batches ``--batch``; for 10 s windows a smaller batch is faster per clip), timed beside every command
(the median so far: the load of a shared machine drifts). ``classify`` needs only one encode, so
its ratio is below 1.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

PROMPTS = ["a sound of a tone", "a dog barking", "rain", "a siren", "speech", "a bell", "footsteps",
           "a car engine", "birds singing", "music"]
DEFAULT_COMMANDS = "explain,explain-no-maps,baseline,classify,evaluate"


def _clips(folder: Path, n: int, sr: int, seconds: float = 5.0) -> Path:
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n):
        wave = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (400 + 40 * i) * t)
        sf.write(folder / f"c{i:03d}.wav", wave.astype(np.float32), sr, subtype="PCM_16")
    return folder


def _synth(folder: Path, n: int) -> Path:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app

    if not folder.exists():
        r = CliRunner().invoke(app, ["synth", "--out", str(folder), "--n", str(n), "--seed", "123"])
        assert r.exit_code == 0, r.output
    return folder


def _random_decoder(model, folder: Path) -> Path:
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.explainers.decoder import MaskDecoder

    path = folder / f"{model.name}-decoder.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(model), model.spec_id()))
    return path


def bench(name: str, n: int, batch: int, commands: list[str], work: Path) -> list[tuple[str, float, float]]:
    """``[(command, seconds per clip, floor seconds per clip)]`` for one model."""
    import torch

    import lmaczs_cli.api as api
    import lmaczs_cli.models.registry as registry
    from lmaczs_cli.api import load_explainer
    from lmaczs_cli.jobs.classify import ClassifyConfig, run_classify
    from lmaczs_cli.jobs.explain import ExplainConfig, run_explain
    from lmaczs_cli.runtime import RunOptions

    ckpt = None if name == "small" else "random"
    model = registry.create_model(name) if ckpt is None else registry.create_model(name, ckpt=ckpt)
    model.eval()
    api.load_model = registry.load_model = lambda *a, **k: model  # built once, above
    work = work / name
    clips = _clips(work / "clips", n, model.sample_rate)
    warm = _clips(work / "warm", 2, model.sample_rate)
    options = {} if ckpt is None else {"lmaczs": {"decoder": _random_decoder(model, work)}}
    explainer = load_explainer("lmaczs", model, **options.get("lmaczs", {}))
    run = RunOptions(clap=name, clap_ckpt=ckpt, device="cpu", batch_size=batch)
    import soundfile as sf

    files = sorted(clips.glob("*.wav"))
    waves = torch.stack([model.fit_window(torch.from_numpy(sf.read(c, dtype="float32")[0])).wave
                         for c in files])
    text = model.embed_text(PROMPTS[:1])
    outs = iter(range(10**6))

    per_batch = max(1, batch // 2)  # clips per engine batch in explain (explain_many's grouping)

    @torch.no_grad()
    def floor() -> None:
        for s in range(0, n, per_batch):
            mag, _ = model.spectrogram(waves[s : s + per_batch])
            enc = model.encode(mag)
            m = explainer.masks(model, mag, text.expand(mag.shape[0], -1), encoded=enc)
            model.encode(m * mag)

    def explain(methods: list[str], maps: bool = True):
        def go(inputs: Path) -> int:
            r = run_explain(ExplainConfig(inputs=[inputs], out=work / f"out{next(outs)}", methods=methods,
                                          prompt=PROMPTS[:1], maps=maps, method_options=options, run=run))
            return r.n_inputs
        return go

    def classify(inputs: Path) -> int:
        r = run_classify(ClassifyConfig(inputs=[inputs], out=work / f"out{next(outs)}", prompt=PROMPTS,
                                        top_k=5, run=run))
        return r.n_inputs

    def evaluate(count: int):
        from lmaczs_cli.data.registry import DataSelection, select_items
        from lmaczs_cli.jobs.evaluate import EvalConfig, run_evaluate

        data = DataSelection("synth", _synth(work / f"synth{count}", count))

        def go(_inputs: Path) -> int:
            run_evaluate(EvalConfig(data=data, out=work / f"out{next(outs)}", methods=["lmaczs"],
                                    method_options=options, run=run))
            return len(select_items(data).items)
        return go

    jobs = {"explain": (explain(["lmaczs"]), explain(["lmaczs"])),
            "explain-no-maps": (explain(["lmaczs"], maps=False), explain(["lmaczs"], maps=False)),
            "baseline": (explain(["gradcam"]), explain(["gradcam"])),
            "classify": (classify, classify),
            "evaluate": (evaluate(2), evaluate(n))}
    def floor_time() -> float:
        t0 = time.perf_counter()
        floor()
        return (time.perf_counter() - t0) / n

    floor()
    floors = [floor_time()]
    rows = []
    for cmd in commands:
        warm_up, timed = jobs[cmd]
        warm_up(warm)
        floors.append(floor_time())  # the machine's load drifts: the floor is timed beside each command
        t0 = time.perf_counter()
        done = timed(clips)
        per_clip = (time.perf_counter() - t0) / done
        f = statistics.median(floors)
        rows.append((cmd, per_clip, f))
        print(f"  {name:18s} {cmd:16s} {1 / per_clip:7.2f} clips/s  {1e3 * per_clip:8.1f} ms/clip  "
              f"{per_clip / f:5.2f}x floor ({1e3 * f:.1f} ms/clip; {done} clips)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="small,laion-htsat-tiny,ms-clap-2022")
    ap.add_argument("--clips", type=int, default=16, help="clips for the bundled model")
    ap.add_argument("--real-clips", type=int, default=8, help="clips for the real CLAPs (random weights)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--commands", default=None,
                    help=f"comma-separated, of {DEFAULT_COMMANDS} (default: all; evaluate for small only)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # random weights: said in the docstring
    print(f"throughput, cpu, {args.threads} torch thread(s), 5 s clips, 1 prompt (classify: 10)")
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as d:
        for name in args.models.split(","):
            name = name.strip()
            commands = (args.commands or DEFAULT_COMMANDS).split(",")
            if args.commands is None and name != "small":
                commands.remove("evaluate")
            bench(name, args.clips if name == "small" else args.real_clips, args.batch, commands, Path(d))


if __name__ == "__main__":
    main()
