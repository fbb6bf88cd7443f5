"""The README.md model card of an exported LMAC-ZS decoder (Hugging Face Hub front matter + facts).

Everything in it comes from the folder's config.json, so the card and the config never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: validation metrics shown on the card, in this order, with what they mean
METRICS = {
    "val_loss": "validation loss (lower is better)",
    "l_sim": "similarity loss: masked vs original clip-prompt similarity",
    "mae": "mean absolute difference of s and s~: how far masking moves the similarity",
    "corr": "correlation of s and s~ over (clip, prompt) pairs",
    "fid_in": "Fid-In: share of pairs whose masked audio keeps the model's decision",
    "mask_mean": "mean mask value (how much of the spectrogram is kept)",
}


def _spec_line(spec: Mapping[str, Any]) -> str:
    return (f"`{spec.get('model')}` ({spec.get('sample_rate')} Hz, n_fft {spec.get('n_fft')}, "
            f"hop {spec.get('hop_length')}, {spec.get('n_mels')} mels, {spec.get('n_frames')} frames)")


def _front_matter(cfg: Mapping[str, Any]) -> list[str]:
    model = str(cfg["spec_id"].get("model", ""))
    lines = ["---", "library_name: lmaczs", "tags:", "- lmaczs", "- explainability", "- audio",
             "- clap", "- zero-shot-audio-classification", f"- mask-domain-{cfg['mask_domain']}"]
    from lmaczs_cli.models.families import family_of

    family = family_of(model)
    repo = None if family is None else family.hub_repo(model)
    if repo and repo.count("/") == 1 and not repo.startswith(("/", ".", "~")):
        lines.append(f"base_model: {repo}")  # a hub CLAP: the Hub links the two
    return [*lines, "---", ""]


def _number(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def _training(cfg: Mapping[str, Any]) -> str:
    sets = []
    for t in cfg.get("training") or []:
        folds = t.get("folds")
        sets.append(str(t.get("data")) + (f" (folds {', '.join(map(str, folds))})" if folds else ""))
    return ", ".join(sets) or "unknown"


def _sanity(cfg: Mapping[str, Any]) -> str:
    s = cfg.get("sanity_check")
    if not s:
        return "not known (run `lmaczs sanity-check --method lmaczs --decoder THIS` and export with "\
               "--sanity-check DIR)"
    verdict = "passed" if s.get("passed") else "FAILED"
    last, bound = s.get("ssim_last"), s.get("pass_ssim")
    detail = f" (SSIM after the last block {_number(last)}, must be <= {_number(bound)})"
    detail = "" if last is None else detail
    shape = ""
    if s.get("shape_kept") is not None and s.get("rank_corr_last") is not None:
        kept = "keep" if s["shape_kept"] else "do not keep"
        shape = (f"; the randomised maps {kept} the intact maps' shape beyond chance (rank correlation "
                 f"{_number(s['rank_corr_last'])}, chance {_number(s.get('rank_corr_chance'))}; SSIM "
                 f"of two clips' maps {_number(s.get('ssim_chance'))})")
    fade = ""
    ratio, none = s.get("mask_mean_ratio_last"), s.get("no_evidence_last")
    if isinstance(ratio, float) and isinstance(none, float) and math.isfinite(ratio) and math.isfinite(none):
        fade = (f"; the randomised maps' mask mean is {ratio:.2f} x the intact maps', and the randomised "
                f"model hears no evidence in {100 * none:.0f} % of the clips (an empty clip matches the "
                "prompt as well as the clip)")
    return f"{verdict} the model-randomisation test{detail}{shape}{fade}"


def _weights(cfg: Mapping[str, Any]) -> str:
    digest, ckpt = cfg.get("clap_weights"), cfg.get("clap_checkpoint")
    if cfg["spec_id"].get("weights"):
        return f"fingerprint `{cfg['spec_id']['weights']}` (lmaczs' digest of the Hugging Face weights)"
    if ckpt == "random":
        return "none: trained on random weights (for tests only)"
    if not digest:
        return "unknown (exported from a checkpoint without its training run folder)"
    return f"sha256 `{digest}`" + (f" of the checkpoint file `{ckpt}`" if ckpt else "")


def model_card(cfg: Mapping[str, Any]) -> str:
    """README.md text for the decoder folder whose config.json is ``cfg``."""
    spec, domain = cfg["spec_id"], cfg["mask_domain"]
    metrics = cfg.get("metrics") or {}
    train = cfg.get("train") or {}
    steps = train.get("steps", metrics.get("step"))
    best = metrics.get("step")
    rows = [
        ("zero-shot model", _spec_line(spec)),
        ("model weights digest", _weights(cfg)),
        ("mask domain", f"{domain} ({'linear STFT bins' if domain == 'stft' else 'mel bands'})"),
        ("training data", _training(cfg)),
        ("training steps", _number(steps) + ("" if best is None else f" (this decoder: step {best})")),
        ("sanity check", _sanity(cfg)),
        ("decoder weights", f"`{cfg['weights']['file']}`, sha256 `{cfg['weights']['sha256']}`"),
        ("lmaczs version", str(cfg.get("lmaczs_version"))),
    ]
    out = _front_matter(cfg)
    out += [f"# LMAC-ZS decoder for {spec.get('model')}", "",
            "Listenable maps for a zero-shot audio classifier (LMAC-ZS): given a clip and a text "
            "prompt, this decoder masks the clip's spectrogram to the part that makes the model "
            "match them; the masked audio is the explanation you listen to.", "",
            "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    shown = [(k, metrics[k]) for k in METRICS if k in metrics]
    if shown:
        out += ["## Validation metrics", "", "| metric | value | meaning |", "|---|---|---|",
                *[f"| {k} | {_number(v)} | {METRICS[k]} |" for k, v in shown], ""]
    if train.get("command"):
        out += ["## Training command", "", "    " + str(train["command"]), ""]
    out += ["## Use", "", "    pip install lmaczs", "    lmaczs download decoder hf:ORG/REPO",
            f"    lmaczs explain clip.wav --prompt \"dog barking\" --clap {spec.get('model')} "
            "--decoder hf:ORG/REPO", "",
            "A decoder follows its model: lmaczs refuses it for another model or input grid, and "
            f"refuses `{cfg['weights']['file']}` when it does not match the sha256 in config.json.", ""]
    return "\n".join(out)
