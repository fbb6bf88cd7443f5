"""``python -m lmaczs_cli.models.small_domain``: the older path of ``python -m
lmaczs_cli.dev.small_domain``; the command is :mod:`lmaczs_cli.dev.small_domain`, the code
:mod:`lmaczs_cli.models.small.domain`."""

if __name__ == "__main__":
    from lmaczs_cli.dev.small_domain import main

    raise SystemExit(main())
