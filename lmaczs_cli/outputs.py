"""Atomic writes, safe names derived from prompts or files, and results tables (CSV/JSON lines)."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lmaczs_cli.errors import UsageError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@contextlib.contextmanager
def atomic_path(final: Path | str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it over ``final`` only on success.

    An interrupted or failing writer leaves no half-written file at ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=suffix or final.suffix + ".part", dir=final.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``):
    setting it, even for an instant, races with the writer threads' own files and folders."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _umask_once()


@functools.cache
def _umask_once() -> int:
    """Without /proc the umask can only be read by setting it: done once per process, under a lock,
    with the strictest mask in the instant it is changed."""
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def safe_name(text: str, max_len: int = 60) -> str:
    """A file-name-safe slug of ``text`` that can never climb out of its folder.

    ASCII letters, digits, ``.``, ``_`` and ``-`` only; no leading dots; long or
    lossy names get a short hash suffix so distinct prompts stay distinct.
    """
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("_", norm).strip("._-")
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    if not slug:
        return f"x_{digest}"
    if len(slug) > max_len or slug != text:
        slug = f"{slug[:max_len].rstrip('._-')}_{digest}"
    return slug


def inside(root: Path, path: Path) -> Path:
    """Return ``path`` resolved, refusing anything that escapes ``root``."""
    root_r = root.resolve()
    p = (root / path).resolve() if not path.is_absolute() else path.resolve()
    if p != root_r and root_r not in p.parents:
        raise UsageError(f"{path}: refusing to write outside --out {root}")
    return p


def rows_to_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    """Render rows as CSV text with a header (missing keys -> empty cells)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    # csv quotes a cell holding "\n" but not one holding a bare "\r", which readers take for a line
    # break: rows with one (a prompt typed with a carriage return) are written fully quoted
    quoted = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n",
                            quoting=csv.QUOTE_NONNUMERIC)
    w.writeheader()
    for r in rows:
        cells = {k: _cell(r.get(k)) for k in columns}
        cr = any(isinstance(v, str) and "\r" in v for v in cells.values())
        (quoted if cr else w).writerow(cells)
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def write_csv_atomic(path: Path | str, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> None:
    """Write a whole CSV table atomically."""
    write_text_atomic(path, rows_to_csv(rows, columns))


def read_csv(path: Path | str) -> list[dict[str, str]]:
    """Read a CSV file into a list of dicts ([] if it does not exist)."""
    p = Path(path)
    if not p.exists():
        return []
    with p.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
