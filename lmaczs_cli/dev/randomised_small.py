"""``python -m lmaczs_cli.dev.randomised_small``: save the small model as ``sanity-check`` leaves it
after a randomisation step, so a decoder can be trained *for* the randomised model (what a
faithful map of it looks like: docs/results.md).

    python -m lmaczs_cli.dev.randomised_small --out runs/randomised.safetensors
    lmaczs train --clap small --clap-ckpt runs/randomised.safetensors --data synth --preset small
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Write the randomised weights (the same blocks and seeds as ``sanity-check``'s step)."""
    from lmaczs_cli.jobs.sanity import _blocks, randomisation_steps, randomised
    from lmaczs_cli.models.registry import load_model

    ap = argparse.ArgumentParser(prog="python -m lmaczs_cli.dev.randomised_small",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    ap.add_argument("--clap-ckpt", help="the small model's weights (default: the bundled ones)")
    ap.add_argument("--step", type=int, help="randomisation step (default: the last, every block)")
    ap.add_argument("--seed", type=int, default=0, help="sanity-check's --seed")
    args = ap.parse_args(argv)
    model = load_model("small", args.clap_ckpt, None, "cpu", args.seed)
    blocks = _blocks(model, "stage")
    steps = randomisation_steps([n for n, _ in blocks])
    step = steps[-1 if args.step is None else args.step]
    by_name = dict(blocks)
    with randomised(model, [(n, by_name[n]) for n in step.blocks], args.seed + 1000 * step.index):
        model.save(args.out, {"randomised": ",".join(step.blocks), "randomised_seed": str(args.seed)})
    print(f"wrote {args.out}: blocks {', '.join(step.blocks)} randomised (sanity-check step {step.index})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
