"""What maps and plots cost: ms per map (direct PNG vs matplotlib, same process), explain's wall
time split into decode / model / write on real clips, and evaluate with and without --plots.

Run: ``python benchmarks/bench_maps.py [--clips 50] [--eval-clips 12] [--skip-eval]``.

- map: the three-panel PNG of one 5 s explanation, drawn directly (``mapimage``) and through a
  matplotlib figure (what ``Explanation.plot`` returns, saved), median of repeats, and the ratio;
  goal: at most 50 ms per map.
- explain: the 50 real ESC-50 clips of ../shared/data/esc50-mini (skipped when absent) with the
  bundled model, one prompt each: seconds decoding, in the model (engine), writing WAVs, writing
  PNGs; the share of the run the maps take.
- evaluate: the same synthetic scenes, methods lmaczs and smoothgrad, with and without --plots
  (ratio; goal: plots change the cost by at most 10 %).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ESC50_MINI = REPO.parent / "shared" / "data" / "esc50-mini"


def _median_ms(fn, repeats: int) -> float:
    fn()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return 1000 * statistics.median(t)


def bench_map(work: Path, repeats: int) -> None:
    import lmaczs_cli
    from lmaczs_cli.mapimage import render_map_png
    from lmaczs_cli.render import map_figure

    model = lmaczs_cli.load_model("small", device="cpu")
    ex = lmaczs_cli.load_explainer("lmaczs", model)
    (e,) = lmaczs_cli.explain(
        ex, str(REPO / "lmaczs_cli/assets/examples/scene.wav"), ["this is a sound of bell"]
    )
    args = (
        e._result.magnitude.numpy(),
        e.mask.numpy(),
        model.sample_rate,
        model.stft_config.hop_length,
        e.title(),
    )

    def direct() -> None:
        render_map_png(work / "direct.png", *args)

    def figure() -> None:
        map_figure(*args).savefig(work / "figure.png", dpi=100)

    new, old = _median_ms(direct, repeats), _median_ms(figure, max(2, repeats // 4))
    print(f"map: direct PNG {new:.0f} ms, matplotlib figure {old:.0f} ms, figure / direct = {old / new:.1f}")


def bench_explain(work: Path, n: int) -> None:
    import lmaczs_cli
    from lmaczs_cli.api import _explanations
    from lmaczs_cli.audio import write_wav
    from lmaczs_cli.data.loading import whole_clip_records
    from lmaczs_cli.data.prompts import Prompt
    from lmaczs_cli.explaining import ExplainEngine
    from lmaczs_cli.render import render_map

    files = sorted((ESC50_MINI / "audio").glob("*.wav"))[:n]
    if not files:
        print("explain: ../shared/data/esc50-mini not present, skipped")
        return
    model = lmaczs_cli.load_model("small", device="cpu")
    ex = lmaczs_cli.load_explainer("lmaczs", model)
    prompts = [Prompt("dog", "this is a sound of dog")]
    engine = ExplainEngine(model, ex, model.embed_text([p.text for p in prompts]), batch_size=8)
    t = {"decode": 0.0, "model": 0.0, "wav": 0.0, "png": 0.0}
    t0 = time.perf_counter()
    for batch in whole_clip_records(files, model.sample_rate, 4, 0):
        t["decode"] += time.perf_counter() - t0
        t1 = time.perf_counter()
        results = engine.run(batch, lambda s: [0])
        t["model"] += time.perf_counter() - t1
        for res in results:
            for e in _explanations(res, prompts, ex, model):
                t2 = time.perf_counter()
                write_wav(work / f"{Path(e.clip).stem}.wav", e.waveform(), e.sample_rate)
                t3 = time.perf_counter()
                render_map(work / f"{Path(e.clip).stem}.png", *e._map_args())
                t["wav"] += t3 - t2
                t["png"] += time.perf_counter() - t3
        t0 = time.perf_counter()
    total = sum(t.values())
    print(
        f"explain: {len(files)} real clips in {total:.1f} s: decode {t['decode']:.1f} s, "
        f"model {t['model']:.1f} s, "
        f"WAVs {t['wav']:.1f} s, maps {t['png']:.1f} s ({100 * t['png'] / total:.0f} % of the run, "
        f"{1000 * t['png'] / len(files):.0f} ms per map)"
    )


def bench_evaluate(work: Path, n: int) -> None:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app

    runner = CliRunner()
    data = work / "synth"
    assert (
        runner.invoke(app, ["synth", "--out", str(data), "--n", str(n), "--seed", "7", "--quiet"]).exit_code
        == 0
    )
    for method, extra in (("lmaczs", []), ("smoothgrad", ["--smoothgrad-samples", "8"])):
        secs = {}
        for plots in (False, True, False, True):  # interleaved: machine load hits both alike
            args = [
                "evaluate",
                "--dataset",
                "synth",
                "--data-root",
                str(data),
                "--clap",
                "small",
                "--method",
                method,
                *extra,
                "--out",
                str(work / f"ev-{method}-{plots}-{len(secs)}"),
                "--quiet",
                "--json",
            ]
            t0 = time.perf_counter()
            r = runner.invoke(app, args + (["--plots"] if plots else []))
            assert r.exit_code == 0, r.output
            secs.setdefault(plots, []).append(time.perf_counter() - t0)
        off, on = min(secs[False]), min(secs[True])
        print(
            f"evaluate {method}, {n} scenes: {off:.1f} s without --plots, {on:.1f} s with, "
            f"ratio {on / off:.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--eval-clips", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--skip-eval", action="store_true")
    a = ap.parse_args()
    np.seterr(all="ignore")
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        bench_map(work, a.repeats)
        bench_explain(work, a.clips)
        if not a.skip_eval:
            bench_evaluate(work, a.eval_clips)


if __name__ == "__main__":
    main()
