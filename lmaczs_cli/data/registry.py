"""One entry point for ``--dataset NAME --data-root ROOT``: ``load_dataset``.

Each set has an adapter ``(root, split, folds, esc10) -> LoadReport`` in
``LOADERS``; a new set (e.g. ``synth`` from ``lmaczs_cli.data.synthetic``) is
one more entry there. Options a set does not have are usage errors, not
silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lmaczs_cli.data.audiocaps import load_audiocaps
from lmaczs_cli.data.clotho import load_clotho
from lmaczs_cli.data.esc50 import load_esc50
from lmaczs_cli.data.items import AudioItem, LoadReport
from lmaczs_cli.data.manifest import load_manifest
from lmaczs_cli.data.strong import load_audiogrounding, load_strong_csv, load_urbansed
from lmaczs_cli.data.us8k import load_us8k
from lmaczs_cli.errors import UsageError

Folds = Iterable[int] | None
Loader = Callable[[Path, str | None, Folds, bool], LoadReport]


def _no(name: str, split: str | None, folds: Folds, esc10: bool, *, has: tuple[str, ...]) -> None:
    """Reject options that data set ``name`` does not take."""
    given = {"split": split is not None, "folds": folds is not None, "esc10": bool(esc10)}
    for option, is_given in given.items():
        if is_given and option not in has:
            takes = ", ".join(f"--{o}" for o in has) or "no selection options"
            raise UsageError(f"--{option} does not apply to data set {name} (it takes {takes})")


def _esc50(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("esc50", split, folds, esc10, has=("folds", "esc10"))
    return load_esc50(root, folds=folds, esc10=esc10)


def _us8k(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("us8k", split, folds, esc10, has=("folds",))
    return load_us8k(root, folds=folds)


def _clotho(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("clotho", split, folds, esc10, has=("split",))
    return load_clotho(root, split=split or "development")


def _audiocaps(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("audiocaps", split, folds, esc10, has=("split",))
    return load_audiocaps(root, split=split or "train")


def _manifest(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("manifest", split, folds, esc10, has=("split",))
    return load_manifest(root, split=split)


def _synth(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    """A folder written by ``lmaczs synth``: its manifest, with ground-truth masks in ``meta``."""
    import csv

    _no("synth", split, folds, esc10, has=("split",))
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise UsageError(f"{manifest} not found: is --data-root a folder written by `lmaczs synth`?")
    report = load_manifest(manifest, split=split)
    with manifest.open(newline="", encoding="utf-8") as f:
        masks = {str((root / r["path"]).resolve()): r.get("mask", "") for r in csv.DictReader(f)}
    items = []
    for it in report.items:
        gt = masks.get(str(Path(it.path).resolve()), "")
        meta = {**it.meta, "gt_masks": str(root / gt) if gt else ""}
        items.append(AudioItem(path=it.path, texts=it.texts, label=it.label, meta=meta))
    return LoadReport(items=items, missing=report.missing, name="synth")


def _urbansed(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("urbansed", split, folds, esc10, has=("split",))
    return load_urbansed(root, split=split)


def _audiogrounding(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("audiogrounding", split, folds, esc10, has=("split",))
    return load_audiogrounding(root, split=split)


def _strong(root: Path, split: str | None, folds: Folds, esc10: bool) -> LoadReport:
    _no("strong", split, folds, esc10, has=())
    return load_strong_csv(root)


#: data set name -> adapter
LOADERS: dict[str, Loader] = {
    "synth": _synth,
    "esc50": _esc50,
    "us8k": _us8k,
    "clotho": _clotho,
    "audiocaps": _audiocaps,
    "manifest": _manifest,
    "urbansed": _urbansed,
    "audiogrounding": _audiogrounding,
    "strong": _strong,
}
DATASET_NAMES: tuple[str, ...] = tuple(LOADERS)
#: the sets that come in folds, and their fold numbers
FOLD_SETS: dict[str, range] = {"esc50": range(1, 6), "us8k": range(1, 11)}


def load_dataset(
    name: str,
    root: Path | str,
    *,
    split: str | None = None,
    folds: Iterable[int] | None = None,
    esc10: bool = False,
) -> LoadReport:
    """Load data set ``name`` from ``root`` (a folder; for ``manifest``, the CSV file)."""
    loader = LOADERS.get(name.strip().lower())
    if loader is None:
        raise UsageError(f"unknown data set {name!r}: expected one of {', '.join(LOADERS)}")
    return loader(Path(root).expanduser(), split, folds, esc10)


def parse_folds(text: str | None, option: str = "--folds") -> list[int] | None:
    """``"1,2,5"`` or ``"1-4"`` (or a mix, ``"1-3,5"``) -> sorted folds; None/"" -> None."""
    if text is None or not text.strip():
        return None
    out: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                out.update(range(lo, hi + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected fold numbers like 1,2,5 or 1-4") from None
    return sorted(out)


@dataclass
class DataSelection:
    """Which clips of a labelled data set a job uses (``--dataset``, ``--data-root``, ``--folds``...)."""

    dataset: str
    data_root: Path | None
    folds: list[int] | None = None
    esc10: bool = False
    split: str | None = None
    max_samples: int | None = None
    seed: int = 0
    #: the candidate classes (``--labels``: a set name or file); default the data set's own
    labels: str | None = None


@dataclass
class Selected:
    """The selected items, the set's ordered class labels, and files the metadata lists but lacks."""

    items: list[AudioItem]
    labels: list[str]
    missing: list[str] = field(default_factory=list)


def select_items(sel: DataSelection) -> Selected:
    """Load ``sel.dataset`` and pick its items (a seeded subset of ``max_samples`` when given)."""
    import numpy as np

    from lmaczs_cli.data.prompts import builtin_labels, load_labels

    if sel.data_root is None:
        raise UsageError(f"--dataset {sel.dataset} needs --data-root")
    report = load_dataset(sel.dataset, sel.data_root, split=sel.split, folds=sel.folds, esc10=sel.esc10)
    items = list(report.items)
    if not items:
        chosen = [f"--{k} {v}" for k, v in (("folds", _folds_text(sel.folds)), ("split", sel.split)) if v]
        chosen += ["--esc10"] if sel.esc10 else []
        how = f" with {' '.join(chosen)}" if chosen else ""
        raise UsageError(f"--dataset {sel.dataset} --data-root {sel.data_root}: no clips selected{how}"
                         + (f" ({len(report.missing)} listed clips are missing)" if report.missing else ""))
    name = "esc10" if sel.esc10 else sel.dataset.strip().lower()
    name = "us8k" if name == "urbansed" else name  # URBAN-SED: UrbanSound8K's ten classes
    labels = builtin_labels(name) if name in ("esc50", "esc10", "us8k", "synth") else None
    if sel.labels is not None:
        labels = load_labels(sel.labels)
    if labels is None:
        labels = sorted({it.label for it in items if it.label})
    if not labels:
        raise UsageError(f"--dataset {sel.dataset}: the items carry no class labels to evaluate")
    if sel.max_samples is not None and len(items) > sel.max_samples:
        order = np.random.default_rng(sel.seed).permutation(len(items))[: sel.max_samples]
        items = [items[i] for i in sorted(order)]
    return Selected(items, labels, list(report.missing))


def _folds_text(folds: list[int] | None) -> str | None:
    return None if folds is None else ",".join(str(f) for f in folds)
