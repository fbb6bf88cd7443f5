"""Which share of a batch command's inputs this process takes: torchrun ranks and ``--shard I/N``.

Inputs are dealt round-robin after they are collected and sorted (input ``k`` goes to share
``k mod N``), so every process of a job computes the same split on its own. Under ``torchrun``
each rank takes one share; ``--shard I/N`` (``I`` from 0, e.g. a Slurm array's
``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``) does the same for independent jobs; both
together split each ``--shard`` among the ranks. The shares write into one ``--out``, where
result tables are merged under a lock (:mod:`lmaczs_cli.outdir`), so the rows are the ones a
single process writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from lmaczs_cli.errors import UsageError

T = TypeVar("T")

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; None -> ``(0, 1)``; a usage error otherwise."""
    if spec is None or str(spec).strip() == "":
        return 0, 1
    m = _SPEC.match(str(spec))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"--shard {spec!r}: expected I/N with 0 <= I < N (e.g. 0/4 ... 3/4; "
                         "a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class Shard:
    """This process's share: ``index`` of ``count`` (torchrun's ``rank`` of ``world`` within it)."""

    index: int = 0
    count: int = 1
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def split(self) -> bool:
        return self.count > 1

    @property
    def first(self) -> bool:
        """The share that also reports inputs yielding no clip and writes ``run.json``."""
        return self.index == 0

    def take(self, items: Sequence[T]) -> list[T]:
        """This share's items (every ``count``-th from ``index``)."""
        return list(items[self.index :: self.count])

    def record(self) -> dict[str, Any] | None:
        """What ``run.json`` says of the split (None for a whole run)."""
        if not self.split:
            return None
        return {"index": self.index, "count": self.count, "torchrun_rank": self.rank,
                "torchrun_world": self.world}


def current_shard(spec: str | None = None) -> Shard:
    """The share of this process from ``--shard`` and torchrun's ``RANK`` / ``WORLD_SIZE``."""
    i, n = parse_shard(spec)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0) if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", rank) or 0) if world > 1 else 0
    return Shard(i * world + rank, n * world, rank, world, local)


class Ranks:
    """torchrun's process group for a sharded batch command: each rank's device, rank 0's run id,
    and a last meeting so no rank exits (and makes torchrun stop the others) before all are done.
    Without torchrun every method is a no-op on this one process."""

    def __init__(self, shard: Shard, device: str) -> None:
        self.info = None
        self.device: Any = device
        if shard.world > 1:
            from lmaczs_cli.jobs.train.distributed import setup_distributed

            self.info = setup_distributed(device)
            self.device = self.info.device

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` without torchrun)."""
        if self.info is None:
            return [obj]
        from lmaczs_cli.jobs.train.distributed import all_gather_objects

        return all_gather_objects(self.info, obj)

    def close(self) -> None:
        """Leave the process group. On a normal finish (no exception on its way out, as in the
        ``finally`` of the callers) the ranks first meet, so none tears down gloo while another is
        still finishing a collective (a rank then aborted at exit under load)."""
        if self.info is not None:
            import sys

            from lmaczs_cli.jobs.train.distributed import teardown

            teardown(self.info, settle=sys.exc_info()[0] is None)
            self.info = None
