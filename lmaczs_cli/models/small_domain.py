"""``python -m lmaczs_cli.models.small_domain``: the documented command (docs/results.md) kept at its
old path; the code is :mod:`lmaczs_cli.models.small.domain`."""

from lmaczs_cli.models.small.domain import main

if __name__ == "__main__":
    raise SystemExit(main())
