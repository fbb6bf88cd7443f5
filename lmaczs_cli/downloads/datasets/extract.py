"""Extract a downloaded archive (zip, tar, 7z) into a folder, refusing members that would escape it.

Only regular files and folders are extracted: absolute paths, ``..`` components,
links and devices make the archive unusable (:class:`ArchiveError`). A damaged
archive (bad CRC, truncated stream) raises :class:`ArchiveError` too, with the
library's reason in one line.
"""

from __future__ import annotations

import lzma
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from lmaczs_cli.errors import LmaczsError, UsageError

KINDS = ("zip", "tar", "7z")


class ArchiveError(LmaczsError):
    """An archive is damaged, unsafe, or not laid out as expected: exit code 1."""


def require_extractor(kind: str, what: str) -> None:
    """Raise a one-line :class:`UsageError` now if ``kind`` archives cannot be extracted here."""
    if kind != "7z":
        return
    try:
        import py7zr  # noqa: F401
    except ImportError:
        raise UsageError(
            f"{what} ships as 7z archives, which need the py7zr package: "
            "pip install py7zr (or pip install 'lmaczs[data]')"
        ) from None


def extract(archive: Path, kind: str, out: Path) -> None:
    """Extract ``archive`` (``kind`` zip, tar or 7z) into the folder ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            _extract_zip(archive, out)
        elif kind == "tar":
            _extract_tar(archive, out)
        elif kind == "7z":
            _extract_7z(archive, out)
        else:
            raise ValueError(f"unknown archive kind {kind!r}")
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError) as e:
        raise ArchiveError(f"{archive.name}: damaged {kind} archive ({_reason(e)})") from None


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"{archive.name}: member {name!r} would be written outside the folder")


def _extract_zip(archive: Path, out: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            _check_name(archive, info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # Unix file type, when the zip records one
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveError(f"{archive.name}: member {info.filename!r} is not a regular file")
        z.extractall(out)  # reads every member, checking its CRC-32


def _extract_tar(archive: Path, out: Path) -> None:
    with tarfile.open(archive) as t:
        members = t.getmembers()
        for m in members:
            _check_name(archive, m.name)
            if not (m.isreg() or m.isdir()):
                raise ArchiveError(f"{archive.name}: member {m.name!r} is not a regular file")
        if hasattr(tarfile, "data_filter"):
            t.extractall(out, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters (names checked above)
            t.extractall(out, members=members)


def _extract_7z(archive: Path, out: Path) -> None:
    import py7zr
    from py7zr import exceptions as e7

    try:
        with py7zr.SevenZipFile(archive) as z:
            for info in z.list():
                _check_name(archive, info.filename)
                if info.is_symlink:
                    raise ArchiveError(f"{archive.name}: member {info.filename!r} is a link")
            z.reset()
            z.extractall(out)  # checks each file's CRC-32
    except (e7.ArchiveError, e7.AbsolutePathError, e7.PasswordRequired) as e:
        raise ArchiveError(f"{archive.name}: damaged 7z archive ({_reason(e)})") from None
