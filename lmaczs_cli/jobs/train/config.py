"""What defines a training run: ``TrainConfig`` (written to config.json), its result, the LR schedule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE
from lmaczs_cli.objective import LossWeights
from lmaczs_cli.runtime import DEFAULT_MODEL

#: what ``best.pt`` follows (``TrainConfig.select``)
SELECT = ("val", "last")
DATA_SETS = ("clotho", "audiocaps", "manifest", "synth", "esc50", "us8k")


@dataclass
class TrainConfig:
    """Everything that defines a training run (written to ``config.json``)."""

    out: str
    clap: str = DEFAULT_MODEL
    clap_ckpt: str | None = None
    tokenizer_dir: str | None = None
    data: list[str] = field(default_factory=lambda: ["synth"])
    data_root: list[str | None] = field(default_factory=list)
    #: fold-based sets (esc50, us8k): train on these folds only / leave these out
    folds: list[int] | None = None
    exclude_folds: list[int] | None = None
    prompt_template: str = DEFAULT_TEMPLATE
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
    #: the decoder sees the pair's similarity s besides the prompt (False: M_theta(t, h) alone)
    sim_input: bool = True
    #: the decoder ignores this many of the model's shallowest hidden maps
    decoder_skip: int = 0
    #: the decoder normalises each hidden map over its channels per location (reads no loudness)
    feature_norm: bool = False
    #: the stft energy gate's slope: one per prompt ("prompt") or per bin from the features ("features")
    gate_source: str = "prompt"
    #: which decoder best.pt holds: "val" (lowest validation loss) or "last" (the latest validated step)
    select: str = "val"
    weights: dict[str, float | str] = field(default_factory=lambda: LossWeights().to_dict())
    resume: bool = False
    quiet: bool = False
    #: the --preset the run started from (its values are already in the fields above)
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a finished (or stopped) run reached."""

    step: int
    decoder: Any  # the trained MaskDecoder
    val: dict[str, float]
    best_val_loss: float
    failed: int
    wall_seconds: float
    out: Path
    #: the step whose decoder ``best.pt`` holds, if this run wrote one
    best_step: int | None = None


def lr_lambda(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))
