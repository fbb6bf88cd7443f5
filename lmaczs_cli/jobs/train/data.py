"""Training and validation data: synthetic scenes on the fly or file sets via the data layer."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from lmaczs_cli.data.registry import FOLD_SETS
from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.train.config import DATA_SETS, TrainConfig
from lmaczs_cli.models.base import ZeroShotModel


class SynthRecords(Dataset):
    """Synthetic scenes as training records, fitted to the model's rate and window."""

    def __init__(self, scenes: Any, model: ZeroShotModel) -> None:
        from lmaczs_cli.data import synthetic as world

        self.scenes = scenes
        self.src_rate = world.SAMPLE_RATE
        self.rate = model.sample_rate
        self.fit = model.fit_window

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.scenes[i]
        wave = item.wave.float()
        if self.rate != self.src_rate:
            from lmaczs_cli.audio import resample

            wave = resample(wave, self.src_rate, self.rate)
        w = self.fit(wave)
        return {"wave": w.wave, "valid": w.valid, "text": item.caption, "error": None, "path": f"synth:{i}"}


def collate_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch training records; a bad record keeps its ``error`` and gets a zero wave."""
    n = max(int(r["wave"].shape[-1]) for r in records if r.get("wave") is not None)
    waves = [
        r["wave"].float() if r.get("error") is None and r.get("wave") is not None else torch.zeros(n)
        for r in records
    ]
    return {
        "wave": torch.stack(waves),
        "text": [r.get("text") for r in records],
        "error": [r.get("error") for r in records],
        "path": [str(r.get("path", "")) for r in records],
    }


def set_epoch(ds: Dataset, epoch: int) -> None:
    if isinstance(ds, ConcatDataset):
        for d in ds.datasets:
            set_epoch(d, epoch)
    elif hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)


def split_validation(items: list[Any], root: Path, fraction: float, cap: int) -> tuple[list[Any], list[Any]]:
    """(train, val): the ``fraction`` of items (at least 2, at most ``cap``) whose path
    relative to ``root`` hashes lowest, so the split survives moving the data set."""
    if fraction <= 0 or len(items) < 4:
        return list(items), []

    def key(it: Any) -> int:
        rel = os.path.relpath(str(it.path), root) if str(it.path).startswith(str(root)) else str(it.path)
        return zlib.crc32(rel.replace(os.sep, "/").encode("utf-8"))

    k = min(cap, max(2, round(fraction * len(items))))
    held = {id(it) for it in sorted(items, key=key)[:k]}
    return [it for it in items if id(it) not in held], [it for it in items if id(it) in held]


@dataclass
class TrainData:
    """The training and validation sets, log lines about them, warnings, and what was used
    (``sources``: one ``{"data", "root", "folds"}`` per set, saved with the decoder)."""

    train: Dataset
    val: Dataset
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


def build_datasets(cfg: TrainConfig, model: ZeroShotModel) -> TrainData:
    """Training and validation sets from ``--data``/``--data-root`` (and ``--folds``/``--exclude-folds``)."""
    if (cfg.folds or cfg.exclude_folds) and not any(d in FOLD_SETS for d in cfg.data):
        raise UsageError(f"--folds/--exclude-folds apply to the fold-based sets {', '.join(FOLD_SETS)}; "
                         f"--data is {', '.join(cfg.data)}")
    roots = list(cfg.data_root)
    needs_root = [d for d in cfg.data if d != "synth"]
    if len(roots) not in (0, len(needs_root), len(cfg.data)):
        raise UsageError(
            f"--data-root: got {len(roots)} roots for {len(cfg.data)} --data sets; give one per set "
            "in the same order (synth: none for scenes made on the fly, or a `lmaczs synth` folder)"
        )
    if len(roots) == len(needs_root) and len(roots) != len(cfg.data):
        it = iter(roots)
        roots = [None if d == "synth" else next(it) for d in cfg.data]
    elif not roots:
        roots = [None] * len(cfg.data)
    trains: list[Dataset] = []
    vals: list[Dataset] = []
    out = TrainData(None, None)  # type: ignore[arg-type]
    for name, root in zip(cfg.data, roots, strict=True):
        if name not in DATA_SETS:
            raise UsageError(f"--data {name!r}: expected one of {', '.join(DATA_SETS)}")
        if name == "synth" and root is None:  # scenes made on the fly (with a root: a `lmaczs synth` folder)
            from lmaczs_cli.data.synthetic import SyntheticDataset

            trains.append(SynthRecords(SyntheticDataset(cfg.synth_scenes, cfg.synth_seed, "train"), model))
            vals.append(SynthRecords(SyntheticDataset(cfg.val_size, cfg.synth_seed, "valid"), model))
            out.sources.append({"data": "synth", "root": None, "folds": None, "seed": cfg.synth_seed})
            continue
        if root is None:
            raise UsageError(f"--data {name} needs --data-root DIR (or a CSV for manifest)")
        tr, va = _file_datasets(name, root, cfg, model, out)
        trains.append(tr)
        vals.append(va)
    out.train, out.val = _concat(trains), _concat(vals)
    return out


def _concat(sets: list[Dataset]) -> Dataset:
    return sets[0] if len(sets) == 1 else ConcatDataset(sets)


def _file_datasets(
    name: str, root: str, cfg: TrainConfig, model: ZeroShotModel, out: TrainData
) -> tuple[Dataset, Dataset]:
    """A file-backed set via the data layer; labels become prompts with ``--prompt-template``."""
    import dataclasses

    from lmaczs_cli.data.loading import ClipDataset
    from lmaczs_cli.data.prompts import check_template
    from lmaczs_cli.data.registry import load_dataset

    check_template(cfg.prompt_template)
    folds = _train_folds(name, cfg)
    report = load_dataset(name, root, folds=folds)
    items = []
    for it in report.items:  # a text that is the item's label becomes a prompt via the template
        texts = tuple(cfg.prompt_template.format(label=t) if t == it.label else t for t in it.texts)
        if texts:
            items.append(dataclasses.replace(it, texts=texts))
    if not items:
        raise UsageError(f"--data {name} --data-root {root}: no usable clips with captions or labels")
    base = Path(root).expanduser()
    base = base.parent if base.is_file() else base
    train_items, val_items = split_validation(items, base, cfg.val_fraction, cfg.val_size)
    out.notes.append(f"{report.summary()}; {len(train_items)} for training, {len(val_items)} for validation")
    out.sources.append({"data": name, "root": str(Path(root).expanduser().resolve()), "folds": folds})
    if folds is not None and set(folds) == set(FOLD_SETS[name]):
        out.warnings.append(
            f"training on every fold of {name} (folds {folds[0]}-{folds[-1]}): a later `evaluate` on {name} "
            f"would score the decoder on clips it was trained on; hold folds out with --exclude-folds "
            f"(e.g. --exclude-folds {folds[-1]}) and evaluate with --folds {folds[-1]}")
    elif folds is not None:
        out.notes.append(f"{name}: training on folds {','.join(map(str, folds))}; evaluate on the others")
    mk = dict(sample_rate=model.sample_rate, window_samples=model.window_samples, fit=model.fit_window)
    return (
        ClipDataset(train_items, crop="random", seed=cfg.seed, **mk),
        ClipDataset(val_items, crop="start", seed=cfg.seed, **mk),
    )


def _train_folds(name: str, cfg: TrainConfig) -> list[int] | None:
    """The folds of a fold-based set this run trains on (all of them unless told otherwise)."""
    if name not in FOLD_SETS:
        return None
    every = list(FOLD_SETS[name])
    chosen = [f for f in (cfg.folds or every) if f in every]
    bad = [f for f in (cfg.folds or []) + (cfg.exclude_folds or []) if f not in every]
    if bad:
        raise UsageError(f"--folds/--exclude-folds {bad}: {name} has folds {every[0]}-{every[-1]}")
    chosen = [f for f in chosen if f not in set(cfg.exclude_folds or [])]
    if not chosen:
        raise UsageError(f"--folds/--exclude-folds leave no fold of {name} to train on")
    return chosen
