"""``python -m lmaczs_cli`` runs the CLI."""

from lmaczs_cli.cli.app import main

main()
