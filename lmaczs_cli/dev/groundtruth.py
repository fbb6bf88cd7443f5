"""``python -m lmaczs_cli.dev.groundtruth``: explanations scored against the synthetic world's
ground truth (prints one JSON object); the metrics are :mod:`lmaczs_cli.jobs.groundtruth`.

    python -m lmaczs_cli.dev.groundtruth --decoder runs/small/best.pt --clap small --n 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lmaczs_cli.explainers.decoder import DOMAINS
from lmaczs_cli.jobs import groundtruth as gt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lmaczs_cli.dev.groundtruth", description=(gt.__doc__ or "").split("\n")[0]
    )
    ap.add_argument("--decoder", type=Path, help="decoder checkpoint (default: the bundled one)")
    ap.add_argument("--clap", default="small")
    ap.add_argument("--clap-ckpt", help="the model's weights (default: the bundled ones)")
    ap.add_argument("--mask-domain", choices=DOMAINS, help="bundled decoder's domain (default stft)")
    ap.add_argument("--method", action="append", help="explainer(s) to score (repeat; default lmaczs); "
                    "e.g. lmaczs, lmaczs-perclip, gradcam, all-ones, empty, random-rectangle")
    ap.add_argument("--scenes", choices=list(gt.SCENE_CONDITIONS), default="default",
                    help="scene condition: the world's own, crowded (3-5 events) or low-snr (-5..5 dB)")
    ap.add_argument("--n", type=int, default=300, help="held-out scenes")
    ap.add_argument("--seed", type=int, default=gt.EVAL_SEED, help="world seed of the held-out scenes")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--table", action="store_true", help="also print a markdown table (stderr)")
    ap.add_argument("--ceiling", action="store_true", help="oracle ceiling instead of a decoder's metrics")
    ap.add_argument("--tune-segments", action="store_true",
                    help="also score every segment threshold and gap of the grid (choose them on a seed "
                         "other than the held-out one, e.g. --seed 777)")
    ap.add_argument("--export", type=Path, help="copy the run's best.pt and a card here (needs --run)")
    ap.add_argument("--run", type=Path, help="the training run folder (for --export)")
    args = ap.parse_args(argv)
    from dataclasses import replace

    from lmaczs_cli.data.synthetic import SceneConfig, SyntheticDataset
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.models.registry import create_model

    model = create_model(args.clap, ckpt=args.clap_ckpt) if args.clap_ckpt else create_model(args.clap)
    config = replace(SceneConfig(), **gt.SCENE_CONDITIONS[args.scenes])
    scenes = SyntheticDataset(args.n, seed=args.seed, split="test", config=config)
    if args.ceiling:
        print(json.dumps(gt.oracle_ceiling(model, scenes), indent=2))
        return 0
    methods = args.method or ["lmaczs"]
    results: dict[str, dict[str, Any]] = {}
    for name in methods:
        options: dict[str, Any] = {}
        if name == "lmaczs":
            options = {"decoder": args.decoder, "mask_domain": args.mask_domain}
        explainer = create_explainer(name, model, **options)
        metrics = gt.groundtruth_metrics(model, explainer, scenes, batch_size=args.batch_size,
                                         tune_segments=args.tune_segments)
        metrics["heldout"] = {"n": args.n, "world_seed": args.seed, "split": "test", "scenes": args.scenes}
        if args.scenes == "default":
            metrics["demo"] = gt.demo_scene_metrics(model, explainer)
        results[name] = metrics
    print(json.dumps(results[methods[0]] if len(methods) == 1 else results, indent=2))
    if args.table:
        print(gt.markdown_table(results), file=sys.stderr)
    if args.export is not None:
        if args.run is None:
            print("--export needs --run RUN_DIR", file=sys.stderr)
            return 2
        gt.export_decoder(args.run, args.export, {"groundtruth": results[methods[0]]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
