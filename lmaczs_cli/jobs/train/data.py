"""Training and validation data: synthetic scenes on the fly or file sets via the data layer."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

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


def build_datasets(cfg: TrainConfig, model: ZeroShotModel) -> tuple[Dataset, Dataset, list[str]]:
    """Training and validation sets from ``--data``/``--data-root`` (messages to show)."""
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
    notes: list[str] = []
    for name, root in zip(cfg.data, roots, strict=True):
        if name not in DATA_SETS:
            raise UsageError(f"--data {name!r}: expected one of {', '.join(DATA_SETS)}")
        if name == "synth" and root is None:  # scenes made on the fly (with a root: a `lmaczs synth` folder)
            from lmaczs_cli.data.synthetic import SyntheticDataset

            trains.append(SynthRecords(SyntheticDataset(cfg.synth_scenes, cfg.synth_seed, "train"), model))
            vals.append(SynthRecords(SyntheticDataset(cfg.val_size, cfg.synth_seed, "valid"), model))
            continue
        if root is None:
            raise UsageError(f"--data {name} needs --data-root DIR (or a CSV for manifest)")
        tr, va, msg = _file_datasets(name, root, cfg, model)
        trains.append(tr)
        vals.append(va)
        notes += msg
    return _concat(trains), _concat(vals), notes


def _concat(sets: list[Dataset]) -> Dataset:
    return sets[0] if len(sets) == 1 else ConcatDataset(sets)


def _file_datasets(
    name: str, root: str, cfg: TrainConfig, model: ZeroShotModel
) -> tuple[Dataset, Dataset, list[str]]:
    """A file-backed set via the data layer; labels become prompts with ``--prompt-template``."""
    import dataclasses

    from lmaczs_cli.data.loading import ClipDataset
    from lmaczs_cli.data.prompts import check_template
    from lmaczs_cli.data.registry import load_dataset

    check_template(cfg.prompt_template)
    report = load_dataset(name, root)
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
    notes = [f"{report.summary()}; {len(train_items)} for training, {len(val_items)} for validation"]
    mk = dict(sample_rate=model.sample_rate, window_samples=model.window_samples, fit=model.fit_window)
    return (
        ClipDataset(train_items, crop="random", seed=cfg.seed, **mk),
        ClipDataset(val_items, crop="start", seed=cfg.seed, **mk),
        notes,
    )
