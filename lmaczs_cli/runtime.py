"""Where and how a job runs: device choice, mixed precision, seeding, and the options every job shares."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmaczs_cli.errors import UsageError

if TYPE_CHECKING:  # keep this module import-light (the CLI imports it for its defaults)
    import torch

#: the model every command and API call uses when none is named (LAION-CLAP for real work)
DEFAULT_MODEL = "laion-htsat-tiny"
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class RunOptions:
    """The options every model-running job shares (the CLI's shared flags)."""

    clap: str = DEFAULT_MODEL
    clap_ckpt: str | None = None
    tokenizer_dir: Path | None = None
    device: str = "auto"
    batch_size: int = 8
    num_workers: int = 0
    seed: int = 0
    precision: str = "fp32"
    #: torch intra-op threads of this process (0: torch's default)
    threads: int = 0

    def __post_init__(self) -> None:
        check_precision(self.precision)


def check_precision(precision: str) -> str:
    """``precision`` if it is one of fp32, bf16, fp16; else a usage error."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision


def resolve_device(spec: str | torch.device) -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N`` to a ``torch.device`` (clear error if CUDA is absent)."""
    import torch

    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: CUDA is not available on this machine")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA for bf16/fp16; a no-op context for fp32 or CPU."""
    import torch

    check_precision(precision)
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
