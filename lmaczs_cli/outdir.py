"""The ``--out`` folder of a run: checked before any work, shared safely, never losing results.

- :func:`check_out_dir`: a one-line usage error (exit 2) for an ``--out`` that is a file,
  lies under a file, or cannot be written, before a model is built.
- :class:`OutDir`: held for the whole run. Every run holds a shared lock on
  ``.lmaczs.lock``; temp files (``.*.part*``) left by a killed run are removed at the
  next start, but only when no other run holds the folder (an exclusive lock succeeds).
- :meth:`OutDir.update_table`: result tables are merged, never replaced: under an
  exclusive lock on the table, the rows on disk are read, this run's rows replace those
  with the same key, and the table is rewritten atomically. Concurrent runs into the
  same folder therefore keep each other's rows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lmaczs_cli.errors import LmaczsError, UsageError
from lmaczs_cli.outputs import read_csv, write_csv_atomic

LOCK_NAME = ".lmaczs.lock"
#: temp files of :func:`lmaczs_cli.outputs.atomic_path`: ``.<name>.<random>.part[.<ext>]``
_PART = re.compile(r"^\..+\.part(\.[A-Za-z0-9]+)?$")


class OutputError(LmaczsError):
    """An output could not be written (disk full, I/O error): the run stops, exit code 1."""

    exit_code = 1

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")


def write_failure(path: Path | str, e: BaseException) -> OutputError:
    """An :class:`OutputError` naming ``path`` and what went wrong (free space when it is short)."""
    reason = getattr(e, "strerror", None) or str(e).strip() or type(e).__name__
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "no space left on device"
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(Path(path).parent if Path(path).parent.exists() else ".").free
        if free < 64 * 1024 * 1024 and "space" not in reason:
            reason += f" ({free // 1024} KiB free: is the disk full?)"
    return OutputError(path, " ".join(str(reason).split()))


def check_out_dir(out: Path | str) -> Path:
    """``out`` as a Path after checking it can hold results (an existing writable folder, or one
    that can be made in a writable folder), without creating anything. A usage error (exit 2)
    names the path and the reason otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, so no folder can be made there")
    try:  # a file made and removed at once: the only sure test (root ignores permission bits)
        fd, probe = tempfile.mkstemp(prefix=".lmaczs-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = "read-only file system" if e.errno == errno.EROFS else (e.strerror or str(e))
        raise UsageError(f"--out {out}: cannot write there ({why})") from None
    return out


def stale_parts(out: Path) -> list[Path]:
    """Temp files of interrupted atomic writes below ``out``."""
    return [p for p in out.rglob(".*") if p.is_file() and _PART.match(p.name)]


class OutDir:
    """A run's hold on its ``--out`` folder (a context manager); see the module docstring."""

    def __init__(self, out: Path | str) -> None:
        self.path = Path(out)
        self._fd: int | None = None
        self.cleaned: list[Path] = []

    def __enter__(self) -> OutDir:
        self.path.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:  # alone in the folder: whatever temp files exist were left by a dead run
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            for p in stale_parts(self.path):
                with contextlib.suppress(OSError):
                    p.unlink()
                    self.cleaned.append(p)
        except BlockingIOError:
            pass  # another run is writing here: its temp files are live
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def update_table(self, name: str, rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
                     key: Callable[[Mapping[str, Any]], Any],
                     drop: Callable[[Mapping[str, Any]], bool] | None = None) -> list[dict]:
        """Merge ``rows`` into table ``name`` (CSV) and return the whole table.

        A row on disk is dropped when a new row has its ``key`` or when ``drop(row)``
        is true; the new rows follow the kept ones. Done under an exclusive lock.
        """
        return update_csv(self.path / name, rows, columns, key, drop)


def update_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
               key: Callable[[Mapping[str, Any]], Any],
               drop: Callable[[Mapping[str, Any]], bool] | None = None) -> list[dict]:
    """Locked read-merge-write of a CSV table (see :meth:`OutDir.update_table`)."""
    new = [dict(r) for r in rows]
    keys = {key(r) for r in new}
    with locked(path.with_name(f".{path.name}.lock")):
        old = read_csv(path)
        merged = [r for r in old if key(r) not in keys and not (drop and drop(r))] + new
        try:
            write_csv_atomic(path, merged, list(columns))
        except OSError as e:
            raise write_failure(path, e) from None
    return merged


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
