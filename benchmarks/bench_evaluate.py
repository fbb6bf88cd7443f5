"""Throughput of ``lmaczs evaluate`` (clips/s) on synthetic scenes, for the small model and LAION.

Run: ``python benchmarks/bench_evaluate.py [--clips 16] [--models small,laion]``.

Each model evaluates the same freshly synthesised scenes with LMAC-ZS (the bundled
decoder for ``small``; a freshly initialised decoder for LAION HTSAT-tiny with random
weights — speed does not depend on the weights). Reported: clips/s for the whole
command (data loading, encode, masks, the in/out passes, metrics), and that time as a
ratio to the plain encodes of the same clips measured in the same process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch


def _decoder_for(model, folder: Path) -> Path:
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.explainers.decoder import MaskDecoder

    path = folder / f"{model.name}-decoder.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(model), model.spec_id()))
    return path


def bench(name: str, clips: int, work: Path) -> None:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app
    from lmaczs_cli.data.registry import DataSelection
    from lmaczs_cli.jobs.evaluate import EvalConfig, run_evaluate
    from lmaczs_cli.models.registry import create_model
    from lmaczs_cli.runtime import RunOptions

    data = work / "synth"
    if not data.exists():
        r = CliRunner().invoke(app, ["synth", "--out", str(data), "--n", str(clips), "--seed", "123"])
        assert r.exit_code == 0, r.output
    clap, ckpt = ("small", None) if name == "small" else ("laion-htsat-tiny", "random")
    tok = None
    if name != "small":  # offline: a stub byte-level BPE stands in for roberta-base's files
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.helpers_laion import make_stub_tokenizer

        tok = make_stub_tokenizer(work / "tok")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(clap, ckpt=ckpt, tokenizer_dir=tok)
        decoder = None if name == "small" else _decoder_for(model, work)
        opts = EvalConfig(data=DataSelection("synth", data), out=work / f"eval-{name}", methods=["lmaczs"],
                          run=RunOptions(clap=clap, clap_ckpt=ckpt, tokenizer_dir=tok, device="cpu",
                                         batch_size=4),
                          method_options={"lmaczs": {"decoder": decoder}})
        run_evaluate(opts)  # warm-up: model build, text tower, caches
        opts.out = work / f"eval-{name}-timed"
        t0 = time.perf_counter()
        run_evaluate(opts)
        total = time.perf_counter() - t0
    from lmaczs_cli.data.loading import ClipDataset, collate_clips
    from lmaczs_cli.data.registry import load_dataset

    items = load_dataset("synth", data).items
    ds = ClipDataset(items, model.sample_rate, model.window_samples, crop="start", fit=model.fit_window)
    waves = collate_clips([ds[i] for i in range(len(ds))])["wave"]
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(waves), 4):
            model.encode(model.spectrogram(waves[s : s + 4])[0])
    enc = time.perf_counter() - t0
    print(f"{name}: {len(items)} clips in {total:.1f} s = {len(items) / total:.2f} clips/s "
          f"(model build and data loading included, after a warm-up run); "
          f"evaluate / plain encode = {total / enc:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--models", default="small,laion")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for name in a.models.split(","):
            bench(name.strip(), a.clips, Path(d))


if __name__ == "__main__":
    main()
