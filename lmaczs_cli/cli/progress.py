"""Progress bars on stderr (rich), silent with --quiet or when stderr is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(total: int | None, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar only on an interactive stderr and without --quiet."""
    if quiet or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
