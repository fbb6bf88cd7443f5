"""DDP under torchrun: which rank this is, global sums with exact gradients, shard sampling."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from lmaczs_cli.runtime import resolve_device


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    #: this process joined the group itself (``setup_distributed``) and leaves it (``teardown``)
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_spec: str) -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, resolve_device(device_spec))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    dev = resolve_device(device_spec)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://")
    return DistInfo(rank, world, local, dev, owns)


def teardown(info: DistInfo, settle: bool = False) -> None:
    """Leave the process group ``setup_distributed`` joined. A process that exits with its gloo
    threads still running can abort ("terminate called without an active exception").
    ``settle``: meet the other ranks first (only on a normal finish: after a failure the others
    may never arrive)."""
    if info.owns_group and dist.is_initialized():
        if settle:
            dist.barrier()
        dist.destroy_process_group()


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


def all_gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def agree(info: DistInfo, flag: bool) -> bool:
    """Rank 0's decision, shared with every rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.broadcast(t, 0)
    return bool(t.item() > 0)


def min_over_ranks(info: DistInfo, value: int) -> int:
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
