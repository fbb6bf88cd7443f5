"""``python -m lmaczs_cli.models.small_training``: the documented command (docs/results.md, the
bundled model's card) kept at its old path; the code is :mod:`lmaczs_cli.models.small.training`."""

from lmaczs_cli.models.small.training import main

if __name__ == "__main__":
    raise SystemExit(main())
