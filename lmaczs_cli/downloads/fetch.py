"""One file over HTTP(S): explicit, resumable, verified downloads (stdlib ``urllib`` only).

:func:`download` is what ``lmaczs download clap``/``tokenizer``/``dataset`` fetch with
(the callers choose the destination, see :mod:`lmaczs_cli.downloads.cache`):

- bytes are written to ``<name>.part`` (locked against a second writer);
- an interrupted transfer resumes from the ``.part`` file with an HTTP
  ``Range`` request (automatically a few times, then on the next run);
- the finished file is checked against the expected size and SHA-256 (from the
  catalogues, :mod:`lmaczs_cli.downloads.models` and :mod:`lmaczs_cli.downloads.datasets.catalogue`,
  else from the Hugging Face ``X-Linked-Size`` / ``X-Linked-Etag`` headers of the redirect,
  else against ``Content-Length``), and against an MD5 where that is what the publisher
  gives (Zenodo);
- only a verified file is renamed (atomically) to its final name; a corrupt
  one is deleted, never left at the final path.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lmaczs_cli import __version__
from lmaczs_cli.errors import LmaczsError

_RETRY_ERRORS = (
    http.client.IncompleteRead,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    ssl.SSLError,
    urllib.error.URLError,
)


class DownloadError(LmaczsError):
    """A download failed (network, HTTP status, size or checksum): exit code 1."""


def file_digests(path: Path, algorithms: tuple[str, ...], chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of ``path`` for each hashlib algorithm name (one pass over the file)."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while block := f.read(chunk):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, remembering headers of every hop."""

    def __init__(self) -> None:
        self.hops: list[Any] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        self.hops.append(headers)  # urllib carries the Range header over to the new request
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass
class _Expect:
    size: int | None
    sha256: str | None


def _linked(headers: list[Any], exp: _Expect) -> None:
    """Fill unknown size/sha256 from Hugging Face's X-Linked-* redirect headers."""
    for h in headers:
        etag = (h.get("X-Linked-Etag") or "").strip().strip('"').lower()
        if exp.sha256 is None and re.fullmatch(r"[0-9a-f]{64}", etag):
            exp.sha256 = etag
        size = h.get("X-Linked-Size")
        if exp.size is None and size and size.isdigit():
            exp.size = int(size)


@contextmanager
def _locked_part(part: Path):
    """Open ``part`` for appending, exclusively (a second downloader fails fast)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    f = open(part, "ab")
    try:
        try:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            raise DownloadError(f"{part} is being written by another lmaczs download") from None
        yield f
    finally:
        f.close()


def _transfer(url: str, f: IO[bytes], exp: _Expect, timeout: float, chunk: int,
              progress: Callable[[int, int | None], None] | None) -> None:
    """One HTTP request appending to ``f`` from its current size; raises on short reads."""
    offset = f.seek(0, os.SEEK_END)
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    req = urllib.request.Request(url, headers={"User-Agent": f"lmaczs/{__version__}"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            m = re.match(r"bytes \*/(\d+)", e.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == offset and exp.size in (None, offset):
                exp.size = offset
                return  # the partial file is already complete
            # our partial file does not fit the remote one: start over
            f.truncate(0)
            raise ConnectionError("server refused to resume; restarting") from None
        raise DownloadError(f"HTTP {e.code} {e.reason} for {url}") from None
    with resp:
        _linked(redirects.hops + [resp.headers], exp)
        length = resp.headers.get("Content-Length")
        if resp.status == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                f.truncate(0)
                raise ConnectionError("server sent an unexpected byte range; restarting")
            if exp.size is None and m.group(2) != "*":
                exp.size = int(m.group(2))
        else:  # 200: the whole file (server ignored or was not asked for a range)
            f.truncate(0)
            f.seek(0)
            offset = 0
            if exp.size is None and length and length.isdigit():
                exp.size = int(length)
        expected_here = int(length) if length and length.isdigit() else None
        got = 0
        while block := resp.read(chunk):
            f.write(block)
            got += len(block)
            if progress:
                progress(offset + got, exp.size)
        f.flush()
        if expected_here is not None and got < expected_here:
            raise http.client.IncompleteRead(b"", expected_here - got)


def download(
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    force: bool = False,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, rename atomically.

    An existing ``dest`` of the expected size is kept unless ``force``. Network
    errors and short transfers are retried ``retries`` times, resuming, after
    ``backoff * 2**k`` seconds. ``md5`` is checked like ``sha256`` (for
    publishers that give only MD5). Raises :class:`DownloadError` with a
    one-line reason; after a checksum or size mismatch neither ``dest`` nor the
    ``.part`` file is left behind.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    exp = _Expect(size, sha256.lower() if sha256 else None)
    if force:
        part.unlink(missing_ok=True)
    elif dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    with _locked_part(part) as f:
        attempt = 0
        while True:
            try:
                if exp.size is not None and f.seek(0, os.SEEK_END) > exp.size:
                    f.truncate(0)
                if exp.size is None or f.seek(0, os.SEEK_END) < exp.size:
                    _transfer(url, f, exp, timeout, chunk, progress)
                break
            except _RETRY_ERRORS as e:
                attempt += 1
                if attempt <= retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                    continue
                have = f.seek(0, os.SEEK_END)
                if not have:
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"download of {url} failed ({_reason(e)})") from None
                total = f" of {exp.size}" if exp.size else ""
                raise DownloadError(
                    f"download of {url} interrupted after {have}{total} bytes "
                    f"({_reason(e)}); run the same command again to resume from {part}"
                ) from None
        f.flush()
        os.fsync(f.fileno())
        have = f.seek(0, os.SEEK_END)
    if exp.size is not None and have != exp.size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{dest.name}: got {have} bytes, expected {exp.size}; the partial file was removed"
        )
    _check_digests(part, dest.name, {"sha256": exp.sha256, "md5": md5.lower() if md5 else None})
    os.replace(part, dest)
    return dest


def _check_digests(part: Path, name: str, expected: dict[str, str | None]) -> None:
    """Compare ``part`` with the expected digests; delete it and raise on a mismatch."""
    wanted = {a: v for a, v in expected.items() if v is not None}
    if not wanted:
        return
    got = file_digests(part, tuple(wanted))
    for algorithm, value in wanted.items():
        if got[algorithm] != value:
            part.unlink(missing_ok=True)
            label = {"sha256": "SHA-256", "md5": "MD5"}.get(algorithm, algorithm)
            raise DownloadError(
                f"{name}: {label} mismatch (expected {value}, got {got[algorithm]}); "
                "the corrupt download was removed, nothing was saved"
            )


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    if isinstance(e, http.client.IncompleteRead):
        return "connection closed early"
    return str(e) or type(e).__name__
