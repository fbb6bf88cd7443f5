"""Options and manners shared by every subcommand (see docs/ENVIRONMENT in README).

Every option that has an environment default reads ``LMACZS_<NAME>``; the
table lives in README.md ("Environment variables").
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lmaczs_cli.errors import LmaczsError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CLAP = "laion-htsat-tiny"

ClapOpt = Annotated[
    str,
    typer.Option(
        "--clap",
        envvar="LMACZS_CLAP",
        help="Zero-shot model: laion-htsat-tiny, laion-htsat-base, or 'small' (bundled, offline).",
    ),
]
ClapCkptOpt = Annotated[
    str | None,
    typer.Option(
        "--clap-ckpt",
        envvar="LMACZS_CLAP_CKPT",
        help="Model checkpoint file (LAION .pt); 'random' builds random weights (testing).",
    ),
]
TokenizerDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--tokenizer-dir",
        envvar="LMACZS_TOKENIZER_DIR",
        help="Folder with the text tokenizer files (LAION: roberta-base vocab.json, merges.txt).",
    ),
]
DecoderOpt = Annotated[
    Path | None,
    typer.Option(
        "--decoder",
        envvar="LMACZS_DECODER",
        help="LMAC-ZS decoder checkpoint (default: the one bundled with the model, if any).",
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option("--device", envvar="LMACZS_DEVICE", help="auto, cpu, cuda or cuda:N."),
]
BatchSizeOpt = Annotated[
    int, typer.Option("--batch-size", envvar="LMACZS_BATCH_SIZE", min=1, help="Clips per batch.")
]
NumWorkersOpt = Annotated[
    int,
    typer.Option(
        "--num-workers", envvar="LMACZS_NUM_WORKERS", min=0, help="Data-loading worker processes."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", envvar="LMACZS_SEED", help="Random seed.")]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision", envvar="LMACZS_PRECISION", help="fp32, bf16 or fp16 (bf16/fp16 on CUDA)."
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", envvar="LMACZS_QUIET", help="No progress bars.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per result line on stdout.")
]
DebugOpt = Annotated[
    bool, typer.Option("--debug", envvar="LMACZS_DEBUG", help="Show tracebacks on errors.")
]
OutOpt = Annotated[
    Path,
    typer.Option("--out", "-o", envvar="LMACZS_OUT", help="Output folder; nothing is written outside it."),
]


def err(message: str) -> None:
    """Print one line to stderr (no colour when NO_COLOR is set or stderr is not a TTY)."""
    print(message, file=sys.stderr, flush=True)


def use_color() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ


def handle_errors(debug_arg: str = "debug") -> Callable[[F], F]:
    """Decorator: turn :class:`LmaczsError` into a one-line message and its exit code."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except LmaczsError as e:
                if kwargs.get(debug_arg):
                    raise
                err(f"lmaczs: error: {e}")
                raise typer.Exit(e.exit_code) from None
            except KeyboardInterrupt:
                err("lmaczs: interrupted")
                raise typer.Exit(130) from None

        return wrapper  # type: ignore[return-value]

    return deco


def resolve_device(spec: str):
    """Map ``auto|cpu|cuda|cuda:N`` to a ``torch.device`` (clear error if CUDA is absent)."""
    import torch

    from lmaczs_cli.errors import UsageError

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: CUDA is not available on this machine")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
