"""How a job tells its caller what is happening, without printing anything itself.

Jobs take a :class:`Reporter` and call it for log lines, warnings, failed
inputs, result rows as they are produced, and progress. The default reporter
keeps warnings and errors (so a Python caller can read them afterwards) and
says nothing; the command line passes one that prints
(``ConsoleReporter`` in ``cli/common.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any


class Reporter:
    """Callbacks a job reports through; this base class records warnings/errors and is silent."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def info(self, message: str) -> None:
        """A progress or log line (e.g. "resuming: 3 clips already done")."""

    def notice(self, message: str) -> None:
        """A line the user must see even when log lines are off (e.g. how many inputs failed)."""

    def warn(self, message: str) -> None:
        """Something the user must know about a result (it may not be trustworthy)."""
        self.warnings.append(message)

    def error(self, message: str) -> None:
        """One input failed (the message names it and says why); the job goes on."""
        self.errors.append(message)

    def result(self, row: Mapping[str, Any]) -> None:
        """A result row, as soon as it exists (the CLI prints it with ``--json``)."""

    @contextlib.contextmanager
    def progress(self, total: int | None, label: str) -> Iterator[Callable[[int], None]]:
        """Yield ``advance(n)`` for a unit of work of ``total`` steps."""
        yield lambda n=1: None


def silent() -> Reporter:
    """A new silent reporter (it still records warnings and errors)."""
    return Reporter()
