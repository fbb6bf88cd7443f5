"""Training the LMAC-ZS decoder: the loop, DDP under torchrun, checkpoints and exact resume.

One process or ``torchrun --nproc_per_node N`` (env vars ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``; gloo on CPU, nccl on CUDA). Only the decoder trains (wrapped in
DDP); the zero-shot model is frozen in eval mode. Each rank reads a disjoint
shard (``DistributedSampler``); the captions of all ranks form the prompt set
and every loss mean is over the global batch, so N ranks x B clips train exactly
like one process with N*B clips (up to float summation order).

Output folder: ``config.json`` (resolved config), ``latest.pt`` (decoder +
optimizer, scheduler, step, data position and per-rank RNG states, written
atomically every ``save_every`` steps), ``best.pt`` (decoder with the lowest
validation loss), ``log.jsonl`` (train and val events) and ``val.csv``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler

from lmaczs_cli import __version__
from lmaczs_cli.checkpoints import check_compatible, decoder_payload, read_checkpoint, save_checkpoint
from lmaczs_cli.errors import UsageError
from lmaczs_cli.explainers.decoder import DOMAINS, MaskDecoder
from lmaczs_cli.explainers.lmaczs import LMACZS
from lmaczs_cli.models.base import ZeroShotModel
from lmaczs_cli.objective import LossWeights, finalize_stats, lmaczs_objective, pair_stats

DATA_SETS = ("clotho", "audiocaps", "manifest", "synth", "esc50", "us8k")


@dataclass
class TrainConfig:
    """Everything that defines a training run (written to ``config.json``)."""

    out: str
    clap: str = "laion-htsat-tiny"
    clap_ckpt: str | None = None
    tokenizer_dir: str | None = None
    data: list[str] = field(default_factory=lambda: ["synth"])
    data_root: list[str | None] = field(default_factory=list)
    prompt_template: str = "this is a sound of {label}"
    extra_prompts: list[str] = field(default_factory=list)
    val_fraction: float = 0.05
    val_size: int = 256
    synth_scenes: int = 20000
    synth_seed: int = 0
    steps: int = 2000
    max_steps: int | None = None
    time_limit: float | None = None
    val_every: int = 200
    log_every: int = 10
    save_every: int | None = None
    batch_size: int = 8
    num_workers: int = 2
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    grad_clip: float = 1.0
    mask_domain: str = "stft"
    width: int = 64
    energy_gate: bool = True
    weights: dict[str, float | str] = field(default_factory=lambda: LossWeights().to_dict())
    resume: bool = False
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a finished (or stopped) run reached."""

    step: int
    decoder: MaskDecoder
    val: dict[str, float]
    best_val_loss: float
    failed: int
    wall_seconds: float
    out: Path


# -- distributed helpers ---------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_spec: str) -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; pick this rank's device."""
    from lmaczs_cli.cli.common import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, resolve_device(device_spec))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    dev = resolve_device(device_spec)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    return DistInfo(rank, world, local, dev)


def make_global_sum(info: DistInfo) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> sum of x over ranks`` whose gradient reaches this rank's ``x`` scaled by W.

    DDP then averages gradients over the W ranks, so the parameters get exactly
    the gradient of the global-batch loss.
    """
    if not info.enabled:
        return lambda x: x

    def global_sum(x: torch.Tensor) -> torch.Tensor:
        total = x.detach().clone()
        dist.all_reduce(total)
        return total + info.world * (x - x.detach())

    return global_sum


def _all_gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def _agree(info: DistInfo, flag: bool) -> bool:
    """Rank 0's decision, shared with every rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.broadcast(t, 0)
    return bool(t.item() > 0)


def _min_over_ranks(info: DistInfo, value: int) -> int:
    if not info.enabled:
        return value
    t = torch.tensor([float(value)], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


class ShardSampler(DistributedSampler):
    """``DistributedSampler`` that can start part-way into an epoch (for exact resume)."""

    def __init__(self, dataset: Dataset, info: DistInfo, seed: int, shuffle: bool = True) -> None:
        super().__init__(
            dataset, num_replicas=info.world, rank=info.rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.skip :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


# -- RNG states (plain types and tensors only, for weights_only loads) -------------------
def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- data ------------------------------------------------------------------------------
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


def _set_epoch(ds: Dataset, epoch: int) -> None:
    if isinstance(ds, ConcatDataset):
        for d in ds.datasets:
            _set_epoch(d, epoch)
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
    from lmaczs_cli.data.registry import load_dataset

    if "{label}" not in cfg.prompt_template:
        raise UsageError(f"--prompt-template {cfg.prompt_template!r} must contain {{label}}")
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


# -- schedule ------------------------------------------------------------------------------
def lr_lambda(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))


# -- the trainer ----------------------------------------------------------------------------
class _Logger:
    """``log.jsonl`` (append) and ``val.csv`` (rewritten), on rank 0 only."""

    VAL_COLUMNS = ["step", "val_loss", "l_sim", "mae", "corr", "fid_in", "mask_mean", "pairs", "time"]

    def __init__(self, out: Path, enabled: bool, resume_step: int | None) -> None:
        self.path = out / "log.jsonl"
        self.enabled = enabled
        self.val_rows: list[dict[str, Any]] = []
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            kept = []
            for line in self.path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    rec = json.loads(line)
                    if rec.get("step", 0) <= resume_step:
                        kept.append(line)
                        if rec.get("event") == "val":
                            self.val_rows.append(rec)
            from lmaczs_cli.outputs import write_text_atomic

            write_text_atomic(self.path, "".join(k + "\n" for k in kept))
        elif self.path.exists():
            self.path.unlink()

    def write(self, rec: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        if rec.get("event") == "val":
            from lmaczs_cli.outputs import write_csv_atomic

            self.val_rows.append(rec)
            write_csv_atomic(self.path.with_name("val.csv"), self.val_rows, self.VAL_COLUMNS)


def _say(info: DistInfo, quiet: bool, msg: str) -> None:
    if info.main and not quiet:
        print(msg, file=sys.stderr, flush=True)


def train(
    cfg: TrainConfig,
    *,
    model: ZeroShotModel | None = None,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
    collate_fn: Callable[[list[Any]], dict[str, Any]] = collate_records,
) -> TrainResult:
    """Train (or resume) a decoder as ``cfg`` says. ``model``/data override building them.

    Denormal floats are flushed to zero while training: near-zero masks otherwise
    fill the backward pass with denormals, which stalls CPUs (observed: > 100x).
    """
    np.finfo(np.float32), np.finfo(np.float64)  # numpy probes its limits before the flush
    torch.set_flush_denormal(True)
    try:
        return _train(cfg, model, train_set, val_set, collate_fn)
    finally:
        torch.set_flush_denormal(False)


def _train(
    cfg: TrainConfig,
    model: ZeroShotModel | None,
    train_set: Dataset | None,
    val_set: Dataset | None,
    collate_fn: Callable[[list[Any]], dict[str, Any]],
) -> TrainResult:
    t_start = time.monotonic()
    if cfg.mask_domain not in DOMAINS:
        raise UsageError(f"--mask-domain {cfg.mask_domain!r}: expected one of {', '.join(DOMAINS)}")
    if cfg.steps < 1:
        raise UsageError("--steps must be at least 1")
    try:
        weights = LossWeights(**cfg.weights)
    except ValueError as err:  # "field 'value': expected ..." -> named as the CLI option
        field_name, _, rest = str(err).partition(" ")
        raise UsageError(f"--{field_name.replace('_', '-')} {rest}") from None
    info = setup_distributed(cfg.device)
    out = Path(cfg.out)
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
    latest = out / "latest.pt"
    if latest.exists() and not cfg.resume:
        raise UsageError(
            f"--out {out} already holds a run (latest.pt); pass --resume or choose another folder"
        )

    seed_everything(cfg.seed)
    if model is None:
        from lmaczs_cli.pipeline import build_model

        model = build_model(cfg.clap, cfg.clap_ckpt, cfg.tokenizer_dir, info.device, cfg.seed)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.to(info.device)
    notes: list[str] = []
    if train_set is None or val_set is None:
        tr, va, notes = build_datasets(cfg, model)
        train_set = train_set if train_set is not None else tr
        val_set = val_set if val_set is not None else va
    for n in notes:
        _say(info, cfg.quiet, n)

    decoder = MaskDecoder.for_model(model, cfg.mask_domain, cfg.width, cfg.energy_gate)
    net: torch.nn.Module = decoder
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(decoder, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    explainer = LMACZS(decoder, net)
    opt = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, min(cfg.warmup, cfg.steps // 2), cfg.steps)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16" and info.device.type == "cuda")
    from lmaczs_cli.pipeline import autocast

    autocast(info.device, cfg.precision)  # validates --precision early

    step, epoch, batch_in_epoch, best, elapsed_before = 0, 0, 0, math.inf, 0.0
    resumed = False
    if cfg.resume and latest.exists():
        ckpt = read_checkpoint(latest)
        check_compatible(ckpt, model.spec_id(), cfg.mask_domain, latest)
        if ckpt["decoder_config"] != decoder.config.to_dict():
            saved = ckpt["decoder_config"]
            raise UsageError(
                f"{latest}: the saved decoder (width {saved['width']}, energy gate "
                f"{saved['energy_gate']}) differs from the one asked for (width {cfg.width}, "
                f"energy gate {cfg.energy_gate}); resume with the same options"
            )
        decoder.load_state_dict(ckpt["decoder"])
        ts = ckpt["train_state"]
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        if ts.get("scaler"):
            scaler.load_state_dict(ts["scaler"])
        step, epoch, batch_in_epoch = int(ts["step"]), int(ts["epoch"]), int(ts["batch_in_epoch"])
        best, elapsed_before = float(ts["best"]), float(ts["elapsed"])
        rngs = ts["rng"]
        if len(rngs) == info.world:
            set_rng_state(rngs[info.rank])
        else:
            _say(info, cfg.quiet, f"resuming on {info.world} ranks a run saved on {len(rngs)}: "
                 "data order and RNG streams differ from an uninterrupted run")
            seed_everything(cfg.seed + step + info.rank)
        resumed = True
        _say(info, cfg.quiet, f"resumed from {latest} at step {step}")
    logger = _Logger(out, info.main, step if resumed else None)

    if info.main:
        from lmaczs_cli.outputs import write_text_atomic

        resolved = {
            **cfg.to_dict(),
            "world_size": info.world,
            "device": str(info.device),
            "model_spec": model.spec_id(),
            "decoder_config": decoder.config.to_dict(),
            "lmaczs_version": __version__,
            "torch_version": torch.__version__,
            "argv": sys.argv,
        }
        write_text_atomic(out / "config.json", json.dumps(resolved, indent=2, default=str) + "\n")

    sampler = ShardSampler(train_set, info, cfg.seed)
    pin = info.device.type == "cuda"
    loader_rng = torch.Generator()
    loader = DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
        collate_fn=collate_fn, drop_last=True, pin_memory=pin, generator=loader_rng,
    )
    per_epoch = len(sampler) // cfg.batch_size
    if per_epoch == 0:
        raise UsageError(
            f"the training set has {len(train_set)} clips: fewer than one batch of {cfg.batch_size} "
            f"per rank ({info.world} ranks)"
        )
    global_sum = make_global_sum(info)
    stop_at = min(cfg.steps, cfg.max_steps) if cfg.max_steps is not None else cfg.steps
    save_every = cfg.save_every or cfg.val_every or 100
    errors_seen: set[str] = set()
    window: dict[str, float] = {}
    window_n, window_clips, window_t = 0, 0, time.monotonic()
    last_val: dict[str, float] = {}
    val_step = -1

    def run_validation() -> dict[str, float]:
        nonlocal best, last_val, val_step
        metrics = validate(model, decoder, val_set, cfg, info, weights, collate_fn, errors_seen)
        val_step = step
        last_val = metrics
        if metrics["pairs"] == 0:
            _say(info, cfg.quiet, "validation gave no (clip, prompt) pairs (empty or unreadable set, "
                 "or one caption only): best.pt follows the latest step")
        improved = metrics["val_loss"] < best or (metrics["pairs"] == 0 and math.isinf(best))
        if improved and metrics["pairs"]:
            best = metrics["val_loss"]
        logger.write({"event": "val", "step": step, **metrics, "time": round(elapsed(), 2)})
        _say(info, cfg.quiet, "val step {step}: loss {val_loss:.4f}  L_sim {l_sim:.5f}  |s-s~| {mae:.4f}  "
             "corr {corr:.3f}  Fid-In {fid_in:.3f}  mask {mask_mean:.3f}".format(step=step, **metrics))
        if improved and info.main:
            payload = decoder_payload(decoder, model.spec_id(), {"step": step, **metrics})
            save_checkpoint(out / "best.pt", payload)
        return metrics

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - t_start

    def save_latest() -> None:
        rngs = _all_gather_objects(info, rng_state())
        if not info.main:
            return
        payload = decoder_payload(decoder, model.spec_id(), last_val)
        payload["train_state"] = {
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "rng": rngs, "best": best, "elapsed": elapsed(), "world": info.world,
            "config": json.loads(json.dumps(cfg.to_dict(), default=str)),
        }
        save_checkpoint(latest, payload)

    from lmaczs_cli.progress import progress_bar

    decoder.train()
    stopped_by_time = False
    with progress_bar(max(0, stop_at - step), "train", cfg.quiet or not info.main) as advance:
        while step < stop_at and not stopped_by_time:
            sampler.set_epoch(epoch)
            _set_epoch(train_set, epoch)
            sampler.skip = batch_in_epoch * cfg.batch_size
            loader_rng.manual_seed(cfg.seed * 100_003 + epoch * 1009 + info.rank)  # worker seeds
            for batch in loader:
                ok = [i for i, e in enumerate(batch["error"]) if e is None]
                for e in batch["error"]:
                    if e is not None and e not in errors_seen:
                        errors_seen.add(e)
                        print(f"lmaczs: {e}", file=sys.stderr, flush=True)
                batch_in_epoch += 1
                if _min_over_ranks(info, len(ok)) == 0:
                    continue
                parts, n_clips = train_step(
                    model, explainer, batch, ok, cfg, info, weights, opt, sched, scaler, global_sum
                )
                step += 1
                advance(1)
                window_n += 1
                window_clips += n_clips
                for k, v in parts.items():
                    window[k] = window.get(k, 0.0) + v
                if step % cfg.log_every == 0 or step == stop_at:
                    dt = max(time.monotonic() - window_t, 1e-9)
                    logger.write({
                        "event": "train", "step": step, "epoch": epoch, "lr": sched.get_last_lr()[0],
                        **{k: v / window_n for k, v in window.items()},
                        "samples_per_s": window_clips / dt, "time": round(elapsed(), 2),
                    })
                    window, window_n, window_clips, window_t = {}, 0, 0, time.monotonic()
                if cfg.val_every and step % cfg.val_every == 0:
                    decoder.eval()
                    run_validation()
                    decoder.train()
                if step % save_every == 0:
                    save_latest()
                out_of_time = cfg.time_limit is not None and time.monotonic() - t_start >= cfg.time_limit
                if _agree(info, out_of_time):
                    stopped_by_time = True
                    _say(info, cfg.quiet, f"time limit reached at step {step}; --resume continues")
                if step >= stop_at or stopped_by_time:
                    break
            else:
                epoch += 1
                batch_in_epoch = 0
                continue
            if batch_in_epoch >= per_epoch:
                epoch += 1
                batch_in_epoch = 0

    decoder.eval()
    if val_step != step:
        run_validation()
    save_latest()
    failed = sum(_all_gather_objects(info, len(errors_seen)))
    if info.enabled:
        dist.barrier()
    return TrainResult(step, decoder, last_val, best, failed, elapsed(), out)


def train_step(
    model: ZeroShotModel,
    explainer: LMACZS,
    batch: dict[str, Any],
    ok: list[int],
    cfg: TrainConfig,
    info: DistInfo,
    weights: LossWeights,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    global_sum: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[dict[str, float], int]:
    """One optimiser step on the valid clips ``ok`` of ``batch``; returns loss parts and clip count."""
    from lmaczs_cli.pipeline import autocast

    wave = batch["wave"][ok].to(info.device, non_blocking=True)
    texts = [batch["text"][i] for i in ok]
    gathered = [t for rank_texts in _all_gather_objects(info, texts) for t in rank_texts]
    prompts = list(dict.fromkeys(gathered + list(cfg.extra_prompts)))
    own = torch.tensor([prompts.index(t) for t in texts], device=info.device)
    text = model.embed_text(prompts)
    with torch.no_grad():
        mag, _ = model.spectrogram(wave)
    with autocast(info.device, cfg.precision):
        res = lmaczs_objective(
            model, mag, text, own,
            lambda m, e, t: explainer.pair_masks(model, m, t, e),
            weights, global_sum=global_sum,
        )
    opt.zero_grad(set_to_none=True)
    scaler.scale(res.total).backward()
    if cfg.grad_clip > 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(explainer.decoder.parameters(), cfg.grad_clip)
    scaler.step(opt)
    scaler.update()
    sched.step()
    parts = dict(res.parts)
    parts["mask_mean"] = parts.pop("l1")
    return parts, len(ok) * info.world


@torch.no_grad()
def validate(
    model: ZeroShotModel,
    decoder: MaskDecoder,
    val_set: Dataset,
    cfg: TrainConfig,
    info: DistInfo,
    weights: LossWeights,
    collate_fn: Callable[[list[Any]], dict[str, Any]] = collate_records,
    errors: set[str] | None = None,
) -> dict[str, float]:
    """Validation metrics over fixed global batches of ``val_set``.

    Global batch k is clips ``[k*B*W, (k+1)*B*W)``; rank r takes its r-th slice of
    B clips and pairs them with the captions of the whole global batch, as in
    training, so the numbers do not depend on the number of ranks.
    ``l_sim``/``mae``: over all (clip, prompt) pairs; ``corr``: Pearson(mask
    mean, s) over all pairs; ``fid_in``: Fid-In among each batch's prompts;
    ``val_loss``: ``l_sim + l1 * mask_mean + div * (1 - corr)`` (selects best.pt).
    """
    from lmaczs_cli.pipeline import autocast

    n, b = len(val_set), cfg.batch_size
    chunks = [range(i, min(i + b * info.world, n)) for i in range(0, n, b * info.world)]
    mine = [list(c[info.rank * b : (info.rank + 1) * b]) for c in chunks]
    loader = iter(
        DataLoader(val_set, batch_sampler=[m for m in mine if m], num_workers=cfg.num_workers,
                   collate_fn=collate_fn)
    )
    explainer = LMACZS(decoder)
    sums = torch.zeros(12, dtype=torch.float64, device=info.device)
    for part in mine:
        batch = next(loader) if part else {"error": [], "text": []}
        ok = [i for i, e in enumerate(batch["error"]) if e is None]
        for e in batch["error"]:
            if e is not None and errors is not None and e not in errors:
                errors.add(e)
                print(f"lmaczs: {e}", file=sys.stderr, flush=True)
        texts = [batch["text"][i] for i in ok]
        gathered = [t for rt in _all_gather_objects(info, texts) for t in rt]
        prompts = list(dict.fromkeys(gathered + list(cfg.extra_prompts)))
        if not ok or len(prompts) < 2:
            continue
        own = torch.tensor([prompts.index(t) for t in texts], device=info.device)
        text = model.embed_text(prompts)
        mag, _ = model.spectrogram(batch["wave"][ok].to(info.device))
        with autocast(info.device, cfg.precision):
            res = lmaczs_objective(
                model, mag, text, own, lambda m, e, t: explainer.pair_masks(model, m, t, e),
                LossWeights(l1=0.0, tv=0.0, out=0.0, div=0.0),
            )
        sums += pair_stats(res, text).to(sums.device)
    if info.enabled:
        dist.all_reduce(sums)
    metrics = finalize_stats(sums)
    metrics["val_loss"] = (
        metrics["l_sim"] + weights.l1 * metrics["mask_mean"] + weights.div * (1.0 - metrics["corr"])
    )
    return metrics
