"""From downloaded files to the folder our loaders read: arrange, then prove it with the loaders.

``unpack`` puts what one file holds into the data set's root (an archive's single top-level
folder unwrapped, only the entries the catalogue keeps); ``check_layout`` loads the result with
the data set's own loader and compares it with the catalogue (clip counts, pinned digests).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lmaczs_cli.downloads.datasets.catalogue import Archive, DatasetSpec
from lmaczs_cli.downloads.datasets.extract import ArchiveError, extract
from lmaczs_cli.downloads.fetch import file_digests
from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.reporter import Reporter

#: top-level entries that are archiving debris, not content
_IGNORED_TOP = ("__MACOSX",)


def unpack(a: Archive, path: Path, scratch: Path, root: Path, reporter: Reporter) -> None:
    """Put what ``a`` (downloaded at ``path``) holds into ``root``: the entries the loaders read.

    Archives are extracted into ``scratch`` first (removed afterwards).
    """
    if a.kind == "file":
        shutil.copyfile(path, root / a.name)
        return
    reporter.info(f"extracting {a.name}")
    extract(path, a.kind, scratch)
    top = scratch
    if a.unwrap:
        entries = [p for p in scratch.iterdir() if p.name not in _IGNORED_TOP and not p.name.startswith("._")]
        if len(entries) != 1 or not entries[0].is_dir():
            found = ", ".join(sorted(p.name for p in entries)) or "nothing"
            raise ArchiveError(f"{a.name}: expected one top-level folder, found {found}")
        top = entries[0]
    for entry in sorted(top.iterdir()):
        if a.keep is not None and entry.name not in a.keep:
            continue
        target = root / entry.name
        if target.exists():
            raise ArchiveError(f"{a.name}: {entry.name} is also in another file of the data set")
        entry.rename(target)
    shutil.rmtree(scratch, ignore_errors=True)


def check_layout(spec: DatasetSpec, root: Path) -> None:
    """Raise :class:`ArchiveError` unless ``root`` is ``spec`` as its loader reads it, complete."""
    from lmaczs_cli.data.registry import load_dataset

    for rel, md5 in spec.file_md5.items():
        f = root / rel
        if not f.is_file():
            raise ArchiveError(f"the archive does not have {spec.name}'s layout: {rel} is missing")
        got = file_digests(f, ("md5",))["md5"]
        if got != md5:
            raise ArchiveError(f"{rel}: MD5 mismatch (expected {md5}, got {got})")
    for split, n in spec.clips.items():
        where = f"{spec.name} {split}" if split else spec.name
        try:
            report = load_dataset(spec.name, root, split=split)
        except UsageError as e:
            text = str(e).replace(f"{root}{os.sep}", "").split(": is --data-root")[0]
            raise ArchiveError(f"the archive does not have {where}'s layout: {text}") from None
        if report.missing:
            first = os.path.relpath(report.missing[0], root)
            raise ArchiveError(f"{where}: {len(report.missing)} listed clips are not in the archive "
                               f"(first: {first})")
        if len(report.items) != n:
            raise ArchiveError(f"{where}: {len(report.items)} clips, expected {n}")
