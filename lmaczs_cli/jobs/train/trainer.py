"""Training the LMAC-ZS decoder: a small :class:`Trainer` (set-up, resume, step, validate, save).

One process or ``torchrun --nproc_per_node N`` (env vars ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``; gloo on CPU, nccl on CUDA). Only the decoder trains (wrapped in
DDP); the zero-shot model is frozen in eval mode. Each rank reads a disjoint
shard; the captions of all ranks form the prompt set and every loss mean is
over the global batch, so N ranks x B clips train exactly like one process
with N*B clips (up to float summation order).

Output folder: ``config.json`` (resolved config), ``latest.pt`` (decoder +
optimizer, scheduler, step, data position and per-rank RNG states, written
atomically every ``save_every`` steps), ``best.pt`` (decoder with the lowest
validation loss), ``log.jsonl`` (train and val events) and ``val.csv``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lmaczs_cli import __version__
from lmaczs_cli.checkpoints import check_compatible, decoder_payload, read_checkpoint, save_checkpoint
from lmaczs_cli.errors import UsageError
from lmaczs_cli.explainers.decoder import DOMAINS, DecoderConfig, MaskDecoder
from lmaczs_cli.explainers.lmaczs import LMACZS
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.jobs.train import distributed as D
from lmaczs_cli.jobs.train.config import SELECT, TrainConfig, TrainResult, lr_lambda
from lmaczs_cli.jobs.train.data import build_datasets, collate_records, set_epoch
from lmaczs_cli.jobs.train.log import TrainLog
from lmaczs_cli.jobs.train.state import rng_state, set_rng_state
from lmaczs_cli.jobs.train.validation import ValidationCache, validate
from lmaczs_cli.models.base import ZeroShotModel
from lmaczs_cli.objective import LossWeights, lmaczs_objective
from lmaczs_cli.provenance import RunRecord, trust_warnings
from lmaczs_cli.runtime import autocast, check_precision, seed_everything

Collate = Callable[[list[Any]], dict[str, Any]]


def train(
    cfg: TrainConfig,
    *,
    model: ZeroShotModel | None = None,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
    collate_fn: Collate = collate_records,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train (or resume) a decoder as ``cfg`` says. ``model``/data override building them.

    Denormal floats are flushed to zero while training: near-zero masks otherwise
    fill the backward pass with denormals, which stalls CPUs (observed: > 100x).
    """
    np.finfo(np.float32), np.finfo(np.float64)  # numpy probes its limits before the flush
    torch.set_flush_denormal(True)
    trainer = None
    try:
        trainer = Trainer(cfg, model, train_set, val_set, collate_fn, reporter)
        return trainer.run()
    finally:
        torch.set_flush_denormal(False)
        if trainer is not None:
            D.teardown(trainer.info)


def loss_weights(cfg: TrainConfig) -> LossWeights:
    """The objective's weights from the config (a bad value is named as its CLI option)."""
    try:
        return LossWeights(**cfg.weights)
    except ValueError as err:  # "field 'value': expected ..." -> named as the CLI option
        field_name, _, rest = str(err).partition(" ")
        raise UsageError(f"--{field_name.replace('_', '-')} {rest}") from None


class Trainer:
    """One training run. :meth:`run` sets up (or resumes), loops over steps and saves."""

    def __init__(self, cfg: TrainConfig, model: ZeroShotModel | None = None, train_set: Dataset | None = None,
                 val_set: Dataset | None = None, collate_fn: Collate = collate_records,
                 reporter: Reporter | None = None) -> None:
        self.t_start = time.monotonic()
        if cfg.mask_domain not in DOMAINS:
            raise UsageError(f"--mask-domain {cfg.mask_domain!r}: expected one of {', '.join(DOMAINS)}")
        if cfg.select not in SELECT:
            raise UsageError(f"--select {cfg.select!r}: expected one of {', '.join(SELECT)}")
        if cfg.steps < 1:
            raise UsageError("--steps must be at least 1")
        check_precision(cfg.precision)
        self.cfg, self.collate_fn, self.rep = cfg, collate_fn, reporter or Reporter()
        self.weights = loss_weights(cfg)
        self.info = D.setup_distributed(cfg.device)
        self.out = Path(cfg.out)
        self.latest = self.out / "latest.pt"
        if self.latest.exists() and not cfg.resume:
            raise UsageError(
                f"--out {self.out} already holds a run (latest.pt); pass --resume or choose another folder"
            )
        if self.info.main:
            self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        self.model = self._frozen(model)
        self.record = RunRecord("train", self.model, {}, None, cfg)
        if self.info.main:
            for w in trust_warnings(self.model, self.cfg.precision):
                self.rep.warn(w)
        self.train_set, self.val_set = self._data(train_set, val_set)
        self._build_optimisation()
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best, self.elapsed_before = math.inf, 0.0
        self.last_val: dict[str, float] = {}
        self.val_step = -1
        self.best_step: int | None = None
        self.errors_seen: set[str] = set()
        self.val_cache = ValidationCache()

    # -- set-up ------------------------------------------------------------------------
    def say(self, message: str) -> None:
        """A log line from rank 0 (silent with --quiet)."""
        if self.info.main and not self.cfg.quiet:
            self.rep.info(message)

    def _frozen(self, model: ZeroShotModel | None) -> ZeroShotModel:
        if model is None:
            from lmaczs_cli.models.registry import load_model
            from lmaczs_cli.preflight import check_ready

            c = self.cfg
            check_ready("train", c)
            model = load_model(c.clap, c.clap_ckpt, c.tokenizer_dir, self.info.device, c.seed)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model.to(self.info.device)

    def _data(self, train_set: Dataset | None, val_set: Dataset | None) -> tuple[Dataset, Dataset]:
        self.sources: list[dict[str, Any]] = [{"data": "given", "root": None, "folds": None}]
        if train_set is not None and val_set is not None:
            return train_set, val_set
        data = build_datasets(self.cfg, self.model)
        self.sources = data.sources
        for n in data.notes:
            self.say(n)
        if self.info.main:
            for w in data.warnings:
                self.rep.warn(w)
        return (train_set if train_set is not None else data.train,
                val_set if val_set is not None else data.val)

    def _build_optimisation(self) -> None:
        cfg, info = self.cfg, self.info
        try:
            self.decoder = MaskDecoder.for_model(self.model, cfg.mask_domain, cfg.width, cfg.energy_gate,
                                                 cfg.sim_input, cfg.decoder_skip, cfg.feature_norm,
                                                 cfg.gate_source)
        except ValueError as err:  # e.g. --decoder-skip beyond the model's hidden maps
            raise UsageError(str(err)) from None
        net: torch.nn.Module = self.decoder
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(self.decoder, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        self.explainer = LMACZS(self.decoder, net)
        self.opt = torch.optim.AdamW(self.decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_lambda(s, min(cfg.warmup, cfg.steps // 2), cfg.steps)
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=cfg.precision == "fp16" and info.device.type == "cuda"
        )
        self.global_sum = D.make_global_sum(info)

    def _resume(self) -> bool:
        """Load ``latest.pt`` when resuming; True if a run was resumed."""
        if not (self.cfg.resume and self.latest.exists()):
            return False
        ckpt = read_checkpoint(self.latest)
        check_compatible(ckpt, self.model.spec_id(), self.cfg.mask_domain, self.latest)
        saved = DecoderConfig.from_dict(ckpt["decoder_config"]).to_dict()  # older ones: defaults
        if saved != self.decoder.config.to_dict():
            raise UsageError(
                f"{self.latest}: the saved decoder (width {saved['width']}, energy gate "
                f"{saved['energy_gate']}, similarity input {saved['sim_input']}) differs from the one "
                f"asked for (width {self.cfg.width}, energy gate {self.cfg.energy_gate}, similarity "
                f"input {self.cfg.sim_input}); resume with the same options"
            )
        self.decoder.load_state_dict(ckpt["decoder"])
        ts = ckpt["train_state"]
        self.opt.load_state_dict(ts["optimizer"])
        self.sched.load_state_dict(ts["scheduler"])
        if ts.get("scaler"):
            self.scaler.load_state_dict(ts["scaler"])
        self.step, self.epoch = int(ts["step"]), int(ts["epoch"])
        self.batch_in_epoch = int(ts["batch_in_epoch"])
        self.best, self.elapsed_before = float(ts["best"]), float(ts["elapsed"])
        rngs = ts["rng"]
        if len(rngs) == self.info.world:
            set_rng_state(rngs[self.info.rank])
        else:
            self.say(f"resuming on {self.info.world} ranks a run saved on {len(rngs)}: "
                     "data order and RNG streams differ from an uninterrupted run")
            seed_everything(self.cfg.seed + self.step + self.info.rank)
        self.say(f"resumed from {self.latest} at step {self.step}")
        return True

    def _write_config(self) -> None:
        if not self.info.main:
            return
        from lmaczs_cli.outputs import write_text_atomic

        resolved = {
            **self.cfg.to_dict(), "world_size": self.info.world, "device": str(self.info.device),
            "model_spec": self.model.spec_id(), "decoder_config": self.decoder.config.to_dict(),
            "lmaczs_version": __version__, "torch_version": torch.__version__, "argv": sys.argv,
        }
        write_text_atomic(self.out / "config.json", json.dumps(resolved, indent=2, default=str) + "\n")

    # -- the run -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.t_start

    def run(self) -> TrainResult:
        """Train to ``cfg.steps`` (or ``max_steps`` / the time limit), validating and saving on the way.

        Rank 0 holds ``--out`` like every command does: temp files a killed run left there
        (``.latest.pt.*.part``, ``.log.jsonl.*.part``) are removed at the start."""
        if not self.info.main:
            return self._run()
        from lmaczs_cli.outdir import OutDir

        with OutDir(self.out) as out:
            if out.cleaned:
                self.say(f"lmaczs: removed {len(out.cleaned)} temp files left by an interrupted run")
            return self._run()

    def _run(self) -> TrainResult:
        resumed = self._resume()
        self.log = TrainLog(self.out, self.info.main, self.step if resumed else None)
        self._write_config()
        self._loop()
        self.decoder.eval()
        if self.val_step != self.step:
            self.validate()
        self.save_latest()
        failed = sum(D.all_gather_objects(self.info, len(self.errors_seen)))
        if self.info.main:
            self.record.write(self.out, self.rep.warnings, {"step": self.step, "best_step": self.best_step,
                                                            "val": self.last_val, "training": self.sources})
        if self.info.enabled:
            import torch.distributed as dist

            dist.barrier()
        return TrainResult(self.step, self.decoder, self.last_val, self.best, failed, self.elapsed(),
                           self.out, self.best_step)

    def _loader(self) -> tuple[DataLoader, D.ShardSampler, torch.Generator]:
        cfg, info = self.cfg, self.info
        sampler = D.ShardSampler(self.train_set, info, cfg.seed)
        gen = torch.Generator()
        loader = DataLoader(
            self.train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
            collate_fn=self.collate_fn, drop_last=True, pin_memory=info.device.type == "cuda", generator=gen,
        )
        if len(sampler) // cfg.batch_size == 0:
            raise UsageError(
                f"the training set has {len(self.train_set)} clips: fewer than one batch of {cfg.batch_size} "
                f"per rank ({info.world} ranks)"
            )
        return loader, sampler, gen

    def _loop(self) -> None:
        cfg, info = self.cfg, self.info
        loader, sampler, gen = self._loader()
        per_epoch = len(sampler) // cfg.batch_size
        stop_at = min(cfg.steps, cfg.max_steps) if cfg.max_steps is not None else cfg.steps
        self.window = _Window()
        self.decoder.train()
        stopped = False
        with self.rep.progress(max(0, stop_at - self.step), "train") as advance:
            while self.step < stop_at and not stopped:
                sampler.set_epoch(self.epoch)
                set_epoch(self.train_set, self.epoch)
                sampler.skip = self.batch_in_epoch * cfg.batch_size
                gen.manual_seed(cfg.seed * 100_003 + self.epoch * 1009 + info.rank)  # worker seeds
                for batch in loader:
                    self.batch_in_epoch += 1
                    if not self._step(batch):
                        continue
                    advance(1)
                    stopped = self._after_step(stop_at)
                    if self.step >= stop_at or stopped:
                        break
                if self.batch_in_epoch >= per_epoch:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def _step(self, batch: dict[str, Any]) -> bool:
        """One optimiser step on the batch's usable clips; False when no rank had any."""
        ok = [i for i, e in enumerate(batch["error"]) if e is None]
        for e in batch["error"]:
            if e is not None:
                self.on_error(e)
        if D.min_over_ranks(self.info, len(ok)) == 0:
            return False
        parts, n_clips = train_step(self, batch, ok)
        self.step += 1
        self.window.add(parts, n_clips)
        return True

    def on_error(self, error: str) -> None:
        """Report an unusable clip once per run."""
        if error not in self.errors_seen:
            self.errors_seen.add(error)
            self.rep.error(f"lmaczs: {error}")

    def _after_step(self, stop_at: int) -> bool:
        """Log, validate and save as scheduled; True when the time limit stops the run."""
        cfg, step = self.cfg, self.step
        if step % cfg.log_every == 0 or step == stop_at:
            self.log.write({"event": "train", "step": step, "epoch": self.epoch,
                            "lr": self.sched.get_last_lr()[0], **self.window.flush(),
                            "time": round(self.elapsed(), 2)})
        if cfg.val_every and step % cfg.val_every == 0:
            self.decoder.eval()
            self.validate()
            self.decoder.train()
        if step % (cfg.save_every or cfg.val_every or 100) == 0:
            self.save_latest()
        out_of_time = cfg.time_limit is not None and time.monotonic() - self.t_start >= cfg.time_limit
        if D.agree(self.info, out_of_time):
            self.say(f"time limit reached at step {step}; --resume continues")
            return True
        return False

    def validate(self) -> dict[str, float]:
        """Validation metrics now; ``best.pt`` is rewritten when the validation loss improves
        (every time with ``select="last"``)."""
        metrics = validate(self.model, self.decoder, self.val_set, self.cfg, self.info, self.weights,
                           self.collate_fn, self.on_error, self.val_cache)
        self.val_step, self.last_val = self.step, metrics
        if metrics["pairs"] == 0:
            self.say("validation gave no (clip, prompt) pairs (empty or unreadable set, "
                     "or one caption only): best.pt follows the latest step")
        improved = (metrics["val_loss"] < self.best or self.cfg.select == "last"
                    or (metrics["pairs"] == 0 and math.isinf(self.best)))
        if improved and metrics["pairs"]:
            self.best = metrics["val_loss"]
        self.log.write({"event": "val", "step": self.step, **metrics, "time": round(self.elapsed(), 2)})
        self.say("val step {step}: loss {val_loss:.4f}  L_sim {l_sim:.5f}  |s-s~| {mae:.4f}  "
                 "corr {corr:.3f}  Fid-In {fid_in:.3f}  mask {mask_mean:.3f}".format(
                     step=self.step, **metrics))
        if improved and self.info.main:
            payload = decoder_payload(self.decoder, self.model.spec_id(), {"step": self.step, **metrics},
                                      self.sources)
            save_checkpoint(self.out / "best.pt", payload)
            self.best_step = self.step
        return metrics

    def save_latest(self) -> None:
        """``latest.pt``: decoder, optimiser, scheduler, data position and every rank's RNG states."""
        rngs = D.all_gather_objects(self.info, rng_state())
        if not self.info.main:
            return
        payload = decoder_payload(self.decoder, self.model.spec_id(), self.last_val, self.sources)
        payload["train_state"] = {
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": rngs, "best": self.best, "elapsed": self.elapsed(), "world": self.info.world,
            "config": json.loads(json.dumps(self.cfg.to_dict(), default=str)),
        }
        save_checkpoint(self.latest, payload)


class _Window:
    """Running means of the loss parts and the throughput between two train log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = self.clips = 0
        self.t0 = time.monotonic()

    def add(self, parts: dict[str, float], clips: int) -> None:
        self.n += 1
        self.clips += clips
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def flush(self) -> dict[str, float]:
        dt = max(time.monotonic() - self.t0, 1e-9)
        out = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        out["samples_per_s"] = self.clips / dt
        self.__init__()
        return out


def train_step(tr: Trainer, batch: dict[str, Any], ok: list[int]) -> tuple[dict[str, float], int]:
    """One optimiser step on the valid clips ``ok`` of ``batch``; returns loss parts and clip count."""
    cfg, info, model = tr.cfg, tr.info, tr.model
    wave = batch["wave"][ok].to(info.device, non_blocking=True)
    texts = [batch["text"][i] for i in ok]
    gathered = [t for rank_texts in D.all_gather_objects(info, texts) for t in rank_texts]
    prompts = list(dict.fromkeys(gathered + list(cfg.extra_prompts)))
    own = torch.tensor([prompts.index(t) for t in texts], device=info.device)
    text = model.embed_text(prompts)
    with torch.no_grad():
        mag, _ = model.spectrogram(wave)
    with autocast(info.device, cfg.precision):
        res = lmaczs_objective(
            model, mag, text, own, lambda m, e, t: tr.explainer.pair_masks(model, m, t, e),
            tr.weights, global_sum=tr.global_sum,
        )
    tr.opt.zero_grad(set_to_none=True)
    tr.scaler.scale(res.total).backward()
    if cfg.grad_clip > 0:
        tr.scaler.unscale_(tr.opt)
        torch.nn.utils.clip_grad_norm_(tr.decoder.parameters(), cfg.grad_clip)
    tr.scaler.step(tr.opt)
    tr.scaler.update()
    tr.sched.step()
    parts = dict(res.parts)
    parts["mask_mean"] = parts.pop("l1")
    return parts, len(ok) * info.world
