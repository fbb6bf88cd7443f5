"""Sanity checks (METHOD.md §7): cascading model randomisation and prompt sensitivity.

Cascading randomisation (Adebayo et al. 2018): the audio encoder's blocks are
re-initialised from the top (output side) down, one more per step; at each
step every method explains the same clips and prompts again, and SSIM against
the unrandomised explanation is recorded. ``independent`` mode randomises one
block at a time instead. The model's weights are restored from a copy after
every step, so nothing randomised survives the command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from lmaczs_cli.models.base import ZeroShotModel


def reinitialise(module: nn.Module, seed: int) -> None:
    """Give ``module`` fresh random weights (seeded): ``reset_parameters`` where a layer has it,
    N(0, 0.02) for any parameter no layer resets (e.g. attention position tables)."""
    torch.manual_seed(seed)
    touched: set[int] = set()
    with torch.no_grad():
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset) and any(True for _ in sub.parameters(recurse=False)):
                reset()
                touched.update(id(p) for p in sub.parameters(recurse=False))
        for p in module.parameters():
            if id(p) not in touched:
                p.normal_(0.0, 0.02)


@contextlib.contextmanager
def randomised(model: ZeroShotModel, blocks: list[tuple[str, nn.Module]], seed: int) -> Iterator[None]:
    """Randomise ``blocks`` of ``model`` inside the context; restore the exact weights after."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        for i, (_, blk) in enumerate(blocks):
            reinitialise(blk, seed + i)
        model.clear_text_cache()
        yield
    finally:
        model.load_state_dict(saved)
        model.clear_text_cache()


@dataclass(frozen=True)
class Step:
    """One randomisation step: ``index`` 0 is the intact model."""

    index: int
    label: str
    blocks: tuple[str, ...]


def randomisation_steps(names: list[str], mode: str = "cascading") -> list[Step]:
    """Steps over block ``names`` (input side first): cascading from the top, or independent."""
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode must be cascading or independent, got {mode!r}")
    steps = [Step(0, "none", ())]
    top_down = list(reversed(names))
    for k, name in enumerate(top_down, start=1):
        chosen = tuple(top_down[:k]) if mode == "cascading" else (name,)
        steps.append(Step(k, name, chosen))
    return steps


def explain_batch(model: ZeroShotModel, explainer, mag: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Masks [B, F, T] for paired clips and prompts, with hidden maps from the current weights."""
    needs_grad = bool(getattr(explainer, "needs_grad", False))
    with torch.no_grad():
        enc = model.encode(mag)
    with torch.set_grad_enabled(needs_grad):
        return explainer.masks(model, mag, text, encoded=enc).float().detach()


@dataclass
class SanityOptions:
    """A parsed ``lmaczs sanity-check`` invocation."""

    dataset: str
    data_root: object
    out: object
    methods: list[str]
    mode: str = "cascading"
    granularity: str = "stage"
    max_samples: int = 32
    wrong_prompts: int = 3
    folds: list[int] | None = None
    esc10: bool = False
    split: str | None = None
    prompt_template: str = "this is a sound of {label}"
    method_options: dict | None = None
    clap: str = "small"
    clap_ckpt: str | None = None
    tokenizer_dir: object = None
    device: str = "auto"
    batch_size: int = 8
    seed: int = 0
    quiet: bool = False
    json_out: bool = False


def _blocks(model: ZeroShotModel, granularity: str) -> list[tuple[str, nn.Module]]:
    try:
        return model.randomisable_blocks(granularity=granularity)  # type: ignore[call-arg]
    except TypeError:
        return model.randomisable_blocks()


def _all_masks(model, explainer, mag, text, batch_size) -> torch.Tensor:
    return torch.cat([
        explain_batch(model, explainer, mag[s : s + batch_size], text[s : s + batch_size])
        for s in range(0, mag.shape[0], batch_size)
    ])


def run_sanity(opts: SanityOptions) -> dict:
    """Run both checks, write ssim.csv, prompt_sensitivity.csv and plots; return the summary."""
    from pathlib import Path

    import numpy as np

    from lmaczs_cli import metrics as M
    from lmaczs_cli.cli.common import err, resolve_device
    from lmaczs_cli.data.loading import ClipDataset, collate_clips
    from lmaczs_cli.evaluation import EvalOptions, load_items
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.outputs import print_json_line, write_csv_atomic, write_text_atomic
    from lmaczs_cli.pipeline import build_model
    from lmaczs_cli.progress import progress_bar
    from lmaczs_cli.render import render_scatter, render_ssim

    out = Path(opts.out)
    items, labels = load_items(EvalOptions(
        dataset=opts.dataset, data_root=opts.data_root, out=out, methods=opts.methods,
        folds=opts.folds, esc10=opts.esc10, split=opts.split, max_samples=opts.max_samples,
        seed=opts.seed))
    dev = resolve_device(opts.device)
    model = build_model(opts.clap, opts.clap_ckpt, opts.tokenizer_dir, dev, opts.seed)
    text = model.embed_text([opts.prompt_template.format(label=lab) for lab in labels]).float()
    explainers = {m: create_explainer(m, model, **(opts.method_options or {}).get(m, {}))
                  for m in opts.methods}
    ds = ClipDataset(items, model.sample_rate, model.window_samples, crop="start", fit=model.fit_window)
    batch = collate_clips([ds[i] for i in range(len(ds))])
    good = [i for i, e in enumerate(batch["error"]) if e is None]
    for e in batch["error"]:
        if e is not None:
            err(f"lmaczs: {e}")
    if not good:
        from lmaczs_cli.errors import UsageError

        raise UsageError("no usable clips to check")
    wave = batch["wave"][good].to(dev)
    clips = [batch["path"][i] for i in good]
    with torch.no_grad():
        mag, _ = model.spectrogram(wave)
        sims = torch.cat([model.encode(mag[s : s + opts.batch_size]).embedding.float()
                          for s in range(0, len(good), opts.batch_size)]) @ text.T
    c = sims.argmax(-1)
    blocks = _blocks(model, opts.granularity)
    by_name = dict(blocks)
    steps = randomisation_steps([n for n, _ in blocks], opts.mode)
    out.mkdir(parents=True, exist_ok=True)
    ssim_rows: list[dict] = []
    base: dict[str, torch.Tensor] = {}
    with progress_bar(len(steps) * len(explainers), "sanity-check", opts.quiet) as advance:
        for step in steps:
            with randomised(model, [(n, by_name[n]) for n in step.blocks], opts.seed + 1000 * step.index):
                for name, ex in explainers.items():
                    masks = _all_masks(model, ex, mag, text[c], opts.batch_size)
                    if step.index == 0:
                        base[name] = masks
                    s = M.ssim(base[name], masks)
                    for j, clip in enumerate(clips):
                        ssim_rows.append({"method": name, "step": step.index, "block": step.label,
                                          "clip": clip, "ssim": float(s[j])})
                    advance(1)
    ssim_summary = M.summarise(ssim_rows, ["ssim"], ["method", "step", "block"])
    write_csv_atomic(out / "ssim.csv", ssim_summary,
                     ["method", "step", "block", "metric", "mean", "ci_low", "ci_high", "n"])
    write_csv_atomic(out / "ssim_samples.csv", ssim_rows, ["method", "step", "block", "clip", "ssim"])
    render_ssim(out / "ssim.png", ssim_summary, opts.mode)

    rng = np.random.default_rng(opts.seed)
    sens_rows, pts = [], []
    n_wrong = min(opts.wrong_prompts, len(labels) - 1)
    wrong = [rng.choice([k for k in range(len(labels)) if k != int(c[j])], n_wrong, replace=False)
             for j in range(len(clips))]
    for name, ex in explainers.items():
        for w in range(n_wrong):
            idx = torch.tensor([int(wrong[j][w]) for j in range(len(clips))], device=dev)
            masks = _all_masks(model, ex, mag, text[idx], opts.batch_size)
            s = M.ssim(base[name], masks)
            for j, clip in enumerate(clips):
                sens_rows.append({"method": name, "clip": clip, "prompt": labels[int(idx[j])],
                                  "true_prompt": labels[int(c[j])], "is_true": 0,
                                  "similarity": float(sims[j, idx[j]]), "mask_mean": float(masks[j].mean()),
                                  "ssim_to_true": float(s[j])})
        for j, clip in enumerate(clips):
            sens_rows.append({"method": name, "clip": clip, "prompt": labels[int(c[j])],
                              "true_prompt": labels[int(c[j])], "is_true": 1,
                              "similarity": float(sims[j, c[j]]), "mask_mean": float(base[name][j].mean()),
                              "ssim_to_true": 1.0})
    write_csv_atomic(out / "prompt_sensitivity.csv", sens_rows,
                     ["method", "clip", "prompt", "true_prompt", "is_true", "similarity", "mask_mean",
                      "ssim_to_true"])
    pts = [{"method": r["method"], "condition": "clean", "similarity": r["similarity"],
            "mask_mean": r["mask_mean"]} for r in sens_rows]
    render_scatter(out / "mask_vs_similarity.png", pts)
    summary = _summary(ssim_summary, sens_rows, list(explainers))
    import json

    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    if opts.json_out:
        for row in summary["methods"]:
            print_json_line(row)
    if not opts.quiet:
        _print(summary)
    return summary


def _summary(ssim_summary: list[dict], sens_rows: list[dict], methods: list[str]) -> dict:
    import numpy as np

    out = []
    for m in methods:
        curve = [(int(r["step"]), float(r["mean"])) for r in ssim_summary if r["method"] == m]
        wrong = [r["ssim_to_true"] for r in sens_rows if r["method"] == m and not r["is_true"]]
        s = np.array([r["similarity"] for r in sens_rows if r["method"] == m])
        mm = np.array([r["mask_mean"] for r in sens_rows if r["method"] == m])
        corr = float(np.corrcoef(s, mm)[0, 1]) if s.std() > 0 and mm.std() > 0 else float("nan")
        out.append({"method": m, "ssim_curve": [v for _, v in sorted(curve)],
                    "ssim_true_vs_wrong_prompt": float(np.mean(wrong)) if wrong else float("nan"),
                    "corr_mask_mean_similarity": corr})
    return {"methods": out}


def _print(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from lmaczs_cli.cli.common import use_color

    t = Table("method", "SSIM per randomisation step (0 = intact)", "SSIM true vs wrong prompt",
              "corr(mask mean, s)", title="sanity checks")
    for r in summary["methods"]:
        t.add_row(r["method"], " ".join(f"{v:.2f}" for v in r["ssim_curve"]),
                  f"{r['ssim_true_vs_wrong_prompt']:.3f}", f"{r['corr_mask_mean_similarity']:.3f}")
    Console(stderr=True, no_color=not use_color(), width=200).print(t)
