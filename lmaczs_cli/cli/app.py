"""The Typer application. Subcommand modules are imported here; none imports torch at top level."""

from __future__ import annotations

import importlib

import typer

from lmaczs_cli.cli import options as o

app = typer.Typer(
    name="lmaczs",
    help=(
        "Explain zero-shot audio classifiers (CLAP) with listenable maps (LMAC-ZS).\n\n"
        "Example: lmaczs explain clip.wav --prompt 'dog barking'"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``; the order here is the order in --help.
COMMAND_MODULES: list[str] = [
    "lmaczs_cli.cli.explain",
    "lmaczs_cli.cli.baseline",
    "lmaczs_cli.cli.evaluate",
    "lmaczs_cli.cli.sanity_check",
    "lmaczs_cli.cli.train",
    "lmaczs_cli.cli.decoder",
    "lmaczs_cli.cli.classify",
    "lmaczs_cli.cli.synth",
    "lmaczs_cli.cli.fad",
    "lmaczs_cli.cli.report",
    "lmaczs_cli.cli.download",
]


@app.callback()
def _root(version: o.Version = False) -> None:
    """Explain zero-shot audio classifiers with listenable maps (LMAC-ZS)."""
    import warnings

    # torch's note on a checkpoint's pickle protocol is for torch's developers; a file it cannot
    # load safely is refused with our own one-line message
    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
