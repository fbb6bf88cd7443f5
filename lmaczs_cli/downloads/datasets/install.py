"""Install a data set: download its files, verify them, lay them out exactly as our loaders read them.

``install_dataset("esc50")`` (the ``lmaczs download dataset`` command):

1. says so and stops if the folder already holds this data set (``--force`` redoes it); a
   folder that lmaczs did not make is never replaced;
2. reports the licence and attribution before anything is downloaded;
3. downloads each file into ``<dest>.download/`` with :func:`lmaczs_cli.downloads.fetch.download`
   (resumable ``.part`` files, size and checksum verified; an interrupted run resumes);
4. extracts into a hidden temporary sibling folder, keeps what the loaders read, checks the
   result with the loaders themselves (every listed clip present, the expected count) and
   pinned file digests, writes ``ATTRIBUTION.txt`` and a marker file, then renames the folder
   into place. On any failure the temporary folder is removed; archives that turned out damaged
   or wrongly laid out are deleted too, so nothing half-made stays.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lmaczs_cli import __version__
from lmaczs_cli.downloads.cache import cache_root
from lmaczs_cli.downloads.datasets.catalogue import DATASETS, Archive, DatasetSpec
from lmaczs_cli.downloads.datasets.extract import ArchiveError, require_extractor
from lmaczs_cli.downloads.datasets.layout import check_layout, unpack
from lmaczs_cli.downloads.fetch import download, file_digests
from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.reporter import Reporter

#: download() retries and back-off (seconds) for each file
RETRIES = 3
BACKOFF = 1.0
MARKER = ".lmaczs-dataset.json"
ATTRIBUTION = "ATTRIBUTION.txt"

ProgressFactory = Callable[[str], Callable[[int, int | None], None]]


def dataset_dir(name: str) -> Path:
    """Default folder of data set ``name``: ``$XDG_CACHE_HOME/lmaczs/data/<name>``."""
    return cache_root() / "data" / name


def get_spec(name: str) -> DatasetSpec:
    """The catalogue entry for ``name``, or a usage error listing the known sets."""
    spec = DATASETS.get(name.strip().lower())
    if spec is None:
        raise UsageError(
            f"unknown data set {name!r}: choose one of {', '.join(DATASETS)} "
            "(AudioCaps has no archive to download: see docs/datasets.md)"
        )
    return spec


def human_size(n: int) -> str:
    """``646 MB``, ``6.0 GB``, ``0.1 MB``."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e7 else f"{n / 1e6:.1f} MB"


def licence_lines(spec: DatasetSpec) -> list[str]:
    """What the user must read before downloading: the set, its licence, its attribution."""
    return [spec.title, f"licence: {spec.licence}", *spec.attribution.splitlines()]


def install_dataset(
    name: str,
    dest: Path | str | None = None,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
    progress: ProgressFactory | None = None,
) -> Path:
    """Download, verify and lay out data set ``name`` in ``dest`` (default :func:`dataset_dir`).

    Returns the folder, usable as ``--data-root``. Raises :class:`DownloadError` (network,
    size, checksum), :class:`ArchiveError` (damaged archive, unexpected layout) or
    :class:`UsageError` (unknown set, occupied folder, missing 7z support), one line each.
    """
    spec = get_spec(name)
    dest = Path(dest).expanduser().absolute() if dest else dataset_dir(spec.name)
    reporter = reporter or Reporter()
    if _already_installed(spec, dest, force, reporter):
        return dest
    for kind in sorted({a.kind for a in spec.archives}):
        require_extractor(kind, spec.title.split(":")[0])
    for line in licence_lines(spec):
        reporter.notice(f"lmaczs: {line}")
    reporter.notice(f"lmaczs: downloading {human_size(spec.download_size())} into {dest}")
    work = dest.with_name(dest.name + ".download")
    work.mkdir(parents=True, exist_ok=True)
    with _locked(work, dest):
        for stale in dest.parent.glob(f".{dest.name}.extract-*"):
            shutil.rmtree(stale, ignore_errors=True)
        _warn_disk_space(spec, dest, reporter)
        try:
            files, notes = _download_all(spec, work, force, reporter, progress)
            _build(spec, files, notes, dest, reporter)
        except ArchiveError:
            shutil.rmtree(work, ignore_errors=True)  # archives that do not hold the data set go too
            raise
        except BaseException:
            _remove_if_empty(work)  # keeps verified files and .part files to resume from
            raise
        shutil.rmtree(work, ignore_errors=True)
    reporter.notice(f"lmaczs: {spec.name} is ready; use it with --data-root {dest}")
    return dest


def _already_installed(spec: DatasetSpec, dest: Path, force: bool, reporter: Reporter) -> bool:
    """True when ``dest`` already holds ``spec``; raises when it holds something lmaczs must not touch."""
    marker = dest / MARKER
    if marker.is_file():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        same = info.get("dataset") == spec.name and info.get("version") == spec.version
        if same and not force:
            reporter.notice(f"lmaczs: {spec.name} already present in {dest} (use --force to download again)")
            return True
        if not same and not force:
            raise UsageError(
                f"{dest} holds {info.get('dataset')} {info.get('version')}, not {spec.name} "
                f"{spec.version}: pass --force to replace it, or choose another --dest"
            )
        return False
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(
            f"{dest} exists and was not made by `lmaczs download dataset`; it is left alone: "
            "choose another --dest (or move it away)"
        )
    return False


@contextlib.contextmanager
def _locked(work: Path, dest: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``work/.lock`` (a second run on the same folder fails fast)."""
    with open(work / ".lock", "a") as f:
        try:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            raise UsageError(f"another `lmaczs download dataset` is working on {dest}") from None
        yield


def _warn_disk_space(spec: DatasetSpec, dest: Path, reporter: Reporter) -> None:
    need = 2 * spec.download_size()  # the archives and what they hold, until the archives go
    free = shutil.disk_usage(dest.parent).free
    if free < need:
        reporter.warn(
            f"{dest.parent}: {human_size(free)} free, but installing {spec.name} needs about "
            f"{human_size(need)} (the archives and their content)"
        )


def _remove_if_empty(work: Path) -> None:
    if work.is_dir() and all(p.name == ".lock" for p in work.iterdir()):
        shutil.rmtree(work, ignore_errors=True)


def _download_all(spec: DatasetSpec, work: Path, force: bool, reporter: Reporter,
                  progress: ProgressFactory | None) -> tuple[list[Path], dict[str, str]]:
    """Download every file of ``spec``; returns the paths and, for files whose digests are not
    the publisher's and differ from the bytes last seen, how (the content checks then decide)."""
    paths: list[Path] = []
    notes: dict[str, str] = {}
    for a in spec.archives:
        path = work / a.name
        if path.is_file() and not force:
            reporter.info(f"{a.name}: already downloaded")
        else:
            reporter.info(f"downloading {a.name} from {a.url}")
        bar = progress(a.name) if progress else None
        try:
            if a.published:
                download(a.url, path, size=a.size, sha256=a.sha256, md5=a.md5, force=force,
                         retries=RETRIES, backoff=BACKOFF, progress=bar)
            else:
                download(a.url, path, force=force, retries=RETRIES, backoff=BACKOFF, progress=bar)
                if note := _differs(a, path):
                    notes[a.name] = note
        finally:
            getattr(bar, "close", lambda: None)()
        paths.append(path)
    return paths, notes


def _differs(a: Archive, path: Path) -> str | None:
    """How ``path`` differs from the size and digests ``a`` describes (None: it matches)."""
    have = path.stat().st_size
    if a.size is not None and have != a.size:
        return f"got {have} bytes, expected {a.size}"
    wanted = {k: v for k, v in (("sha256", a.sha256), ("md5", a.md5)) if v}
    got = file_digests(path, tuple(wanted)) if wanted else {}
    for algorithm, value in wanted.items():
        if got[algorithm] != value:
            label = {"sha256": "SHA-256", "md5": "MD5"}[algorithm]
            return f"{label} mismatch (expected {value}, got {got[algorithm]})"
    return None


def _build(spec: DatasetSpec, files: list[Path], notes: dict[str, str], dest: Path,
           reporter: Reporter) -> None:
    """Extract and arrange ``files`` in a temporary sibling of ``dest``, check, rename into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        root = staging / "root"
        root.mkdir()
        for i, (a, path) in enumerate(zip(spec.archives, files, strict=True)):
            try:
                unpack(a, path, staging / f"unpack-{i}", root, reporter)
            except ArchiveError as e:
                raise ArchiveError(_with_notes(e, notes, a.name)) from None
        try:
            check_layout(spec, root)
        except ArchiveError as e:
            raise ArchiveError(_with_notes(e, notes)) from None
        for name, note in notes.items():
            reporter.warn(
                f"{name}: {note}: GitHub rebuilt the archive; its content passed {spec.name}'s "
                "checks (pinned metadata digest, every clip present), so it is used"
            )
        _write_attribution(spec, root, files)
        _place(root, dest, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _with_notes(e: ArchiveError, notes: dict[str, str], name: str | None = None) -> str:
    """The error, preceded by the digest mismatches that made the content checks necessary."""
    relevant = [f"{n}: {v}" for n, v in notes.items() if name in (None, n)]
    text = "; ".join([*relevant, str(e)])
    return text + ("; the download was removed, nothing was kept" if relevant else "; nothing was kept")


def _write_attribution(spec: DatasetSpec, root: Path, files: list[Path]) -> None:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    lines = [spec.title, f"Source: {spec.homepage} (version {spec.version})",
             f"Licence: {spec.licence}", "", spec.attribution, "",
             f"Downloaded by lmaczs {__version__} on {when} from:"]
    record = []
    for a, path in zip(spec.archives, files, strict=True):
        # published digests were verified on download; others are computed (ESC-50: one zip)
        digests = ({k: v for k, v in (("md5", a.md5), ("sha256", a.sha256)) if v} if a.published
                   else file_digests(path, ("sha256",)))
        shown = ", ".join(f"{k.upper()} {v}" for k, v in digests.items())
        lines.append(f"  {a.url}  ({path.stat().st_size} bytes, {shown})")
        record.append({"name": a.name, "url": a.url, "size": path.stat().st_size, **digests})
    (root / ATTRIBUTION).write_text("\n".join(lines) + "\n", encoding="utf-8")
    marker = {"dataset": spec.name, "version": spec.version, "title": spec.title,
              "licence": spec.licence, "files": record, "lmaczs": __version__, "date": when}
    (root / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _place(root: Path, dest: Path, staging: Path) -> None:
    """Rename ``root`` to ``dest``; an existing ``dest`` (ours, --force) is moved into ``staging``
    first and put back if the rename fails."""
    old = staging / "replaced"
    if dest.exists():
        dest.rename(old)
    try:
        root.rename(dest)
    except OSError:
        if old.exists():
            old.rename(dest)
        raise
