"""Research and maintenance commands, not the user CLI (that is :mod:`lmaczs_cli.cli`, ``lmaczs``).

Each module holds one argparse ``main(argv)`` over library code that lives elsewhere; run them
with ``python -m``:

- ``python -m lmaczs_cli.dev.groundtruth``: explanations scored against the synthetic world's
  ground truth (:mod:`lmaczs_cli.jobs.groundtruth`);
- ``python -m lmaczs_cli.dev.small_training``: train or measure the bundled small model
  (:mod:`lmaczs_cli.models.small.training`);
- ``python -m lmaczs_cli.dev.small_domain``: write or measure its out-of-domain statistics
  (:mod:`lmaczs_cli.models.small.domain`).

Only this package and ``cli/`` parse a command line (``tests/test_layering.py``). The older paths
(``python -m lmaczs_cli.jobs.groundtruth``, ``lmaczs_cli.models.small_training``,
``lmaczs_cli.models.small_domain``) still run these ``main`` functions.
"""
