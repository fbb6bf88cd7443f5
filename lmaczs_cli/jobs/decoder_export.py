"""Export a trained decoder to a hub-ready folder, and register it as its model's default decoder.

The source is a training run folder (``lmaczs train --out``: ``best.pt`` plus ``config.json``,
``run.json`` and ``log.jsonl``, which give the card its training steps, command and the CLAP
weights digest) or a ``.pt`` checkpoint (its run folder is used when it lies in one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmaczs_cli.errors import UsageError


@dataclass
class Source:
    """A decoder checkpoint and what its run folder says about it."""

    path: Path
    payload: dict[str, Any]
    #: config.json entries for the card: clap_weights, clap_checkpoint, train
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clap_weights(self) -> str | None:
        return self.extra.get("clap_weights")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_step(run_dir: Path) -> int | None:
    try:
        lines = (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    steps = []
    for line in lines:
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):
            continue
    return max(steps) if steps else None


def run_info(run_dir: Path, spec_id: dict[str, Any]) -> dict[str, Any]:
    """Card entries from a training run folder (empty when it is not the run of this decoder)."""
    cfg, rec = _json(run_dir / "config.json"), _json(run_dir / "run.json")
    if not cfg or dict(cfg.get("model_spec") or {}) != dict(spec_id):
        return {}
    model = rec.get("model") or {}
    argv = [str(a) for a in cfg.get("argv") or []]
    out: dict[str, Any] = {"train": {
        "steps": _last_step(run_dir) or cfg.get("steps"), "seed": cfg.get("seed"),
        "command": " ".join(["lmaczs", *argv[1:]]) if argv else None,
    }}
    if model.get("random_weights"):
        out["clap_checkpoint"] = "random"  # no default decoder is ever made for random weights
        return out
    if spec_id.get("weights"):
        out["clap_weights"] = str(spec_id["weights"])
    elif model.get("checkpoint_sha256"):
        out["clap_weights"] = str(model["checkpoint_sha256"])
    if model.get("checkpoint"):
        out["clap_checkpoint"] = Path(str(model["checkpoint"])).name
    return out


def read_source(source: Path) -> Source:
    """The decoder of a run folder (its ``best.pt``) or of a ``.pt`` file, with its run's facts."""
    from lmaczs_cli.checkpoints import read_checkpoint

    source = Path(source)
    if source.is_dir():
        if (source / "config.json").is_file() and (source / "model.safetensors").is_file():
            raise UsageError(f"{source}: already an exported decoder folder; copy it, or use it as it is "
                             "with --decoder")
        ckpt = source / "best.pt"
        if not ckpt.is_file():
            raise UsageError(f"{source}: no best.pt (give a training run folder or a decoder .pt file)")
        run_dir = source
    else:
        ckpt, run_dir = source, source.parent
    payload = read_checkpoint(ckpt)
    payload.pop("train_state", None)  # latest.pt: optimiser and RNG states are no part of a decoder
    extra = run_info(run_dir, payload["spec_id"])
    fingerprint = payload["spec_id"].get("weights")  # Hugging Face models carry their weights' digest
    if fingerprint and "clap_weights" not in extra and extra.get("clap_checkpoint") != "random":
        extra["clap_weights"] = str(fingerprint)
    return Source(ckpt, payload, extra)


def sanity_verdict(folder: Path, decoder: Path) -> dict[str, Any]:
    """LMAC-ZS's verdict in a ``lmaczs sanity-check`` output folder, checked to be this decoder's."""
    from lmaczs_cli.provenance import file_sha256

    summary = _json(folder / "summary.json")
    mine = [m for m in summary.get("methods", []) if isinstance(m, dict) and m.get("method") == "lmaczs"]
    if not mine:
        raise UsageError(f"--sanity-check {folder}: no LMAC-ZS verdict there (summary.json of "
                         "`lmaczs sanity-check --method lmaczs`)")
    checked = ((_json(folder / "run.json").get("methods") or {}).get("lmaczs") or {}).get("decoder_sha256")
    if checked and checked != file_sha256(decoder):
        raise UsageError(f"--sanity-check {folder}: that check ran another decoder than {decoder}")
    m = mine[0]
    return {"passed": bool(m.get("passed")), "ssim_last": _last(m.get("ssim_curve")),
            "pass_ssim": summary.get("pass_ssim"), "decoder_verified": bool(checked),
            # the chance levels (absent from summaries written before they existed)
            "ssim_chance": m.get("ssim_chance"), "rank_corr_last": _last(m.get("rank_corr_curve")),
            "rank_corr_chance": m.get("rank_corr_chance"), "shape_kept": m.get("shape_kept"),
            "mask_mean_ratio_last": _last(m.get("mask_mean_ratio_curve")),
            # the share of clips in which the fully randomised model hears no evidence
            "no_evidence_last": _last(m.get("empty_keeps_s_curve"))}


def _last(curve: Any) -> Any:
    return curve[-1] if isinstance(curve, list) and curve else None


def export(source: Path, out: Path, sanity: Path | None = None) -> dict[str, Any]:
    """Write ``source``'s decoder as a hub-ready folder ``out``; returns its config.json."""
    from lmaczs_cli.decoder_hub import write_folder

    src = read_source(source)
    extra = dict(src.extra)
    if sanity is not None:
        extra["sanity_check"] = sanity_verdict(Path(sanity), src.path)
    return write_folder(src.payload, Path(out), extra)


def register_source(source: Path) -> tuple[Path | None, str]:
    """Register ``source``'s decoder as its model's default; (folder, why not) - folder None when
    it cannot be (random or unknown CLAP weights)."""
    from lmaczs_cli.decoder_hub import register

    src = read_source(source)
    if not src.clap_weights:
        why = ("it was trained on random model weights" if src.extra.get("clap_checkpoint") == "random"
               else "its run folder does not name the model's weights (run.json)")
        return None, why
    return register({**src.payload, **src.extra}, src.clap_weights, str(src.path.resolve())), ""
