"""The one pipeline every command reuses: build the model, resolve prompts, stream batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.base import ZeroShotModel


@dataclass(frozen=True)
class Prompt:
    """A prompt to explain: ``label`` (short name for files/tables) and ``text`` (what is embedded)."""

    label: str
    text: str


def resolve_prompts(
    prompts: Sequence[str] | None,
    prompts_file: Path | None = None,
    labels: str | None = None,
    template: str = "this is a sound of {label}",
) -> list[Prompt]:
    """Prompts from ``--prompt`` (verbatim), ``--prompts-file`` and ``--labels`` (via template)."""
    out = [Prompt(p, p) for p in prompts or []]
    if prompts_file is not None:
        if not prompts_file.is_file():
            raise UsageError(f"--prompts-file {prompts_file}: file not found")
        for line in prompts_file.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(Prompt(line.strip(), line.strip()))
    if labels is not None:
        from lmaczs_cli.data.labels import load_labels

        if "{label}" not in template:
            raise UsageError(f"--prompt-template {template!r} must contain {{label}}")
        out += [Prompt(lab, template.format(label=lab)) for lab in load_labels(labels)]
    if not out:
        raise UsageError("no prompts: give --prompt TEXT, --prompts-file FILE or --labels SET")
    return list(dict.fromkeys(out))


def build_model(
    clap: str,
    clap_ckpt: str | None = None,
    tokenizer_dir: Path | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> ZeroShotModel:
    """Create the frozen zero-shot model ``clap`` on ``device``."""
    from lmaczs_cli.models.registry import create_model

    model = create_model(
        clap, ckpt=clap_ckpt, tokenizer_dir=tokenizer_dir, device=str(device), seed=seed
    )
    return model.to(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA for bf16/fp16; a no-op context for fp32 or CPU."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise UsageError(f"--precision {precision!r}: expected fp32, bf16 or fp16")
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def clip_batches(
    paths: Sequence[Path],
    model: ZeroShotModel,
    batch_size: int,
    num_workers: int = 0,
) -> Iterator[dict]:
    """Batches of clips fitted to the model's window; bad files come back as ``error`` entries."""
    from torch.utils.data import DataLoader

    from lmaczs_cli.data.items import AudioItem
    from lmaczs_cli.data.loading import ClipDataset, collate_clips

    items = [AudioItem(path=str(p), texts=(), label=None, meta={}) for p in paths]
    ds = ClipDataset(
        items, model.sample_rate, model.window_samples, crop="start", fit=model.fit_window
    )
    yield from DataLoader(
        ds,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_clips,
        persistent_workers=False,
    )
