"""``python -m lmaczs_cli.dev.small_domain``: write the bundled small model's out-of-domain
statistics (``--write``, after retraining it) or measure the shipped ones (``--measure``); the
code is :mod:`lmaczs_cli.models.small.domain`.

    python -m lmaczs_cli.dev.small_domain --write
    python -m lmaczs_cli.dev.small_domain --measure --esc50 DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lmaczs_cli.models.small import domain


def main(argv: list[str] | None = None) -> int:
    """Write ``domain.npz`` for the bundled weights, or measure the shipped one."""
    from lmaczs_cli.models.small.model import bundled_weights, load_small

    ap = argparse.ArgumentParser(prog="python -m lmaczs_cli.dev.small_domain",
                                 description=(domain.__doc__ or "").splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write assets/small/domain.npz")
    ap.add_argument("--measure", action="store_true",
                    help="measure the shipped statistics on held-out synthetic scenes (and --esc50)")
    ap.add_argument("--esc50", type=Path, help="with --measure: a folder of real .wav clips")
    args = ap.parse_args(argv)
    model = load_small()
    if args.measure:
        check = domain.load(model, bundled_weights())
        if check is None:
            ap.error("no statistics for the bundled weights: run with --write first")
        for what, share in domain.measure(model, check, args.esc50).items():
            print(f"{100 * share:5.1f} % flagged out of domain: {what}")
        return 0
    stats = domain.fit(model)
    print(f"threshold {float(stats['threshold']):.2f} (quantile {domain.QUANTILE}) over {domain.N_CAL} "
          f"scenes, Gaussians from {domain.N_FIT}; digest {stats['digest']}")
    if args.write:
        from lmaczs_cli.outputs import atomic_path

        target = domain.domain_file(bundled_weights())
        with atomic_path(target, suffix=".part.npz") as tmp, tmp.open("wb") as f:
            np.savez(f, **stats)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
