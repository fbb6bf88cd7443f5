"""Writing a batch job's files while the model works on the next clips, results kept in order.

:class:`OrderedWriters` runs ``save(item)`` for each submitted item in a small thread pool
(resynthesis, WAV encoding and PNG drawing release the GIL for most of their time) and hands
each input's results to ``done(key, error, results)`` in submission order, so rows reach their
table in the order a single thread would produce them. At most ``limit`` inputs wait, which
bounds the memory held by masks not yet written. ``workers=0`` saves in the caller's thread.
An exception from ``save`` (a full disk) is raised to the caller at the next call; queued work
is cancelled when the block is left.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class OrderedWriters:
    """A context manager: ``submit(key, error, items)``; ``done`` sees inputs in submission order."""

    def __init__(self, save: Callable[[Any], Any], done: Callable[[str, str | None, list[Any]], None],
                 workers: int = 2, limit: int = 8) -> None:
        self.save, self.done, self.limit = save, done, max(1, int(limit))
        self.pool = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lmaczs-writer")
                     if workers else None)
        self.pending: deque[tuple[str, str | None, list[Future]]] = deque()

    def __enter__(self) -> OrderedWriters:
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        try:
            if exc_type is None:
                self._drain(until=0)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, key: str, error: str | None, items: Sequence[Any]) -> None:
        """Queue the items of input ``key`` (or its ``error``); hand back every input now finished."""
        futures = [self._start(it) for it in items] if error is None else []
        self.pending.append((key, error, futures))
        self._drain(until=self.limit)

    def _start(self, item: Any) -> Future:
        if self.pool is not None:
            return self.pool.submit(self.save, item)
        f: Future = Future()
        f.set_result(self.save(item))  # an exception propagates at once, as without writers
        return f

    def _drain(self, until: int) -> None:
        """Hand over finished inputs from the front; wait while more than ``until`` are pending."""
        while self.pending:
            key, error, futures = self.pending[0]
            if len(self.pending) <= until and not all(f.done() for f in futures):
                return
            results = [f.result() for f in futures]  # waits; re-raises a save's exception
            self.pending.popleft()
            self.done(key, error, results)
