"""The Typer application. Subcommand modules are imported here; none imports torch at top level."""

from __future__ import annotations

import importlib

import typer

from lmaczs_cli import __version__

app = typer.Typer(
    name="lmaczs",
    help=(
        "Explain zero-shot audio classifiers (CLAP) with listenable maps (LMAC-ZS).\n\n"
        "Example: lmaczs explain clip.wav --prompt 'dog barking'"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
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
    "lmaczs_cli.cli.classify",
    "lmaczs_cli.cli.synth",
    "lmaczs_cli.cli.fad",
    "lmaczs_cli.cli.download",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lmaczs {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Explain zero-shot audio classifiers with listenable maps (LMAC-ZS)."""


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
