"""What every command shares: the ``command`` decorator (shared options, errors), the console.

``command`` registers a function as a Typer command, adds the shared options
of ``options.RUN_OPTIONS`` (model-running commands) and ``options.MANNERS``,
and hands them to the function as one :class:`Shared` object. It also turns
:class:`~lmaczs_cli.errors.LmaczsError` into a one-line message and its exit
code (a traceback only with ``--debug``).

Output manners: result tables and ``--json`` lines go to stdout; progress, log
lines, warnings and errors go to stderr.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.errors import LmaczsError
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.runtime import RunOptions


def err(message: str) -> None:
    """Print one line to stderr."""
    print(message, file=sys.stderr, flush=True)


def use_color() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


class ConsoleReporter(Reporter):
    """Reports a job on the terminal: log lines and progress on stderr (not with --quiet),
    warnings and errors always on stderr, result rows as JSON lines on stdout with --json."""

    def __init__(self, quiet: bool = False, json_out: bool = False) -> None:
        super().__init__()
        self.quiet, self.json_out = quiet, json_out

    def info(self, message: str) -> None:
        if not self.quiet:
            err(message)

    def notice(self, message: str) -> None:
        err(message)

    def warn(self, message: str) -> None:
        super().warn(message)
        err(f"lmaczs: warning: {message}")

    def error(self, message: str) -> None:
        super().error(message)
        err(message)

    def result(self, row: Mapping[str, Any]) -> None:
        if self.json_out:
            sys.stdout.write(json.dumps(dict(row), default=_json_default) + "\n")
            sys.stdout.flush()

    @contextlib.contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Callable[[int], None]]:
        from lmaczs_cli.cli.progress import progress_bar

        with progress_bar(total, label, self.quiet) as advance:
            yield advance


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)


@dataclass
class Shared:
    """The shared options of one command line: the run's options and the output manners."""

    run: RunOptions | None
    quiet: bool
    json_out: bool
    debug: bool

    def reporter(self) -> ConsoleReporter:
        return ConsoleReporter(self.quiet, self.json_out)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A human-readable result table on stdout (plain when stdout is not a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    tty = sys.stdout.isatty()
    table = Table(*columns, title=title, box=box.SIMPLE_HEAD if tty else box.ASCII2)
    for r in rows:
        table.add_row(*r)
    Console(file=sys.stdout, no_color=not tty or "NO_COLOR" in os.environ, width=None if tty else 200,
            highlight=False).print(table)


def command(app: typer.Typer, name: str, *, help: str, short_help: str, runs_model: bool = True,
            defaults: Mapping[str, Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(..., shared: Shared)`` as command ``name`` with the shared options added.

    ``defaults`` overrides a shared option's default for this command (e.g. ``batch_size``).
    """
    defaults = dict(defaults or {})

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "shared"]
        table = {**(o.RUN_OPTIONS if runs_model else {}), **o.MANNERS}
        kw = inspect.Parameter.KEYWORD_ONLY
        added = [inspect.Parameter(n, kw, annotation=t, default=defaults.get(n, d))
                 for n, (t, d) in table.items()]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            shared = {n: kwargs.pop(n) for n in table}
            manners = {n: shared.pop(n) for n in o.MANNERS}
            with _errors_handled(manners["debug"]):
                run = RunOptions(**shared) if runs_model else None
                if run is not None and run.threads:
                    import torch

                    torch.set_num_threads(run.threads)
                return fn(**kwargs, shared=Shared(run, **manners))

        params = own + added
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        app.command(name, help=help, short_help=short_help)(wrapper)
        return fn

    return deco


@contextlib.contextmanager
def _errors_handled(debug: bool) -> Iterator[None]:
    """Turn :class:`LmaczsError` into a one-line message and its exit code; Ctrl-C into exit 130.

    Python warnings about random weights are silenced: the jobs report them as one clear line.
    """
    import warnings

    from lmaczs_cli.errors import RandomWeightsWarning

    warnings.filterwarnings("ignore", category=RandomWeightsWarning)
    try:
        yield
    except LmaczsError as e:
        if debug:
            raise
        err(f"lmaczs: error: {e}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err("lmaczs: interrupted")
        raise typer.Exit(130) from None


def handle_errors(debug_arg: str = "debug") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for commands registered without :func:`command` (``download``)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _errors_handled(bool(kwargs.get(debug_arg))):
                return fn(*args, **kwargs)

        return wrapper

    return deco


def method_options(decoder: Any = None, mask_domain: str | None = None, ig_steps: int = 50,
                   smoothgrad_samples: int = 25, smoothgrad_noise: float = 0.15,
                   perclip_steps: int | None = None) -> dict[str, dict[str, Any]]:
    """Per-method factory options from the method flags."""
    return {
        "lmaczs": {"decoder": decoder, "mask_domain": mask_domain},
        "lmaczs-perclip": {} if perclip_steps is None else {"steps": perclip_steps},
        "ig": {"steps": ig_steps},
        "smoothgrad": {"samples": smoothgrad_samples, "noise": smoothgrad_noise},
    }
