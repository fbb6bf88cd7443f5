"""``python -m lmaczs_cli.dev.small_training``: train the bundled small model, or print the
acceptance numbers of its weights (``--evaluate``); the code is :mod:`lmaczs_cli.models.small.training`.

    python -m lmaczs_cli.dev.small_training --out DIR --seed 0 --calibration 3
    python -m lmaczs_cli.dev.small_training --evaluate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from lmaczs_cli.models.small import training as tr
from lmaczs_cli.models.small.model import load_small


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m lmaczs_cli.dev.small_training",
                                description=(tr.__doc__ or "").split("\n\n")[0])
    p.add_argument("--out", type=Path, help="folder for model.safetensors and card.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=tr.TrainConfig.n_train)
    p.add_argument("--epochs", type=int, default=tr.TrainConfig.epochs)
    p.add_argument("--threads", type=int, default=tr.TrainConfig.threads)
    p.add_argument("--calibration", type=float, default=tr.TrainConfig.calibration,
                   help="weight of the class-prompt calibration term (0: off)")
    p.add_argument("--present-target", type=float, default=tr.TrainConfig.present_target)
    p.add_argument("--absent-target", type=float, default=tr.TrainConfig.absent_target)
    p.add_argument("--negatives", type=int, default=tr.TrainConfig.negatives,
                   help="event-free clips added to every batch")
    p.add_argument("--evaluate", action="store_true", help="only print the acceptance numbers")
    p.add_argument("--ckpt", help="weights to evaluate (default: the bundled ones)")
    a = p.parse_args(argv)
    if a.evaluate:
        torch.set_num_threads(a.threads)
        print(json.dumps(tr.evaluate(load_small(a.ckpt)), indent=2))
        return 0
    if a.out is None:
        p.error("--out is required for training")
    cfg = tr.TrainConfig(seed=a.seed, n_train=a.n_train, epochs=a.epochs, threads=a.threads,
                         calibration=a.calibration, present_target=a.present_target,
                         absent_target=a.absent_target, negatives=a.negatives)
    t0 = time.time()
    model = tr.train(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    wall = time.time() - t0
    model.save(a.out / "model.safetensors", {"seed": str(cfg.seed)})
    metrics = tr.evaluate(model)
    card = tr.training_card(cfg, metrics, wall, argv)
    from lmaczs_cli.outputs import write_text_atomic

    write_text_atomic(a.out / "card.json", json.dumps(card, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
