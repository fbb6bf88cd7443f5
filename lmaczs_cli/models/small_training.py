"""``python -m lmaczs_cli.models.small_training``: the older path of ``python -m
lmaczs_cli.dev.small_training``, kept because the bundled model's card records it; the command
is :mod:`lmaczs_cli.dev.small_training`, the code :mod:`lmaczs_cli.models.small.training`."""

if __name__ == "__main__":
    from lmaczs_cli.dev.small_training import main

    raise SystemExit(main())
