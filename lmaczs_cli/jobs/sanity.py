"""The sanity-check job (docs/method.md): cascading model randomisation and prompt sensitivity.

Cascading randomisation (Adebayo et al. 2018): the audio encoder's blocks are
re-initialised from the top (output side) down, one more per step; at each
step every method explains the same clips and prompts again, and SSIM against
the unrandomised explanation is recorded. ``independent`` mode randomises one
block at a time instead. The model's weights are restored from a copy after
every step, so nothing randomised survives the command.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE
from lmaczs_cli.data.registry import DataSelection
from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.reporter import Reporter
from lmaczs_cli.models.base import ZeroShotModel
from lmaczs_cli.provenance import RunRecord, domain_warning, trust_warnings
from lmaczs_cli.runtime import RunOptions


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
    with torch.no_grad():
        enc = model.encode(mag)
    return explainer.masks(model, mag, text, encoded=enc)


@dataclass
class SanityConfig:
    """A sanity-check run: which clips and methods, how to randomise, where to write."""

    data: DataSelection
    out: Path
    methods: list[str] = field(default_factory=lambda: ["lmaczs"])
    mode: str = "cascading"
    granularity: str = "stage"
    wrong_prompts: int = 3
    prompt_template: str = DEFAULT_TEMPLATE
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: RunOptions = field(default_factory=RunOptions)


#: a method passes the randomisation test when its maps' SSIM after the last step is at most this
PASS_SSIM = 0.25
#: the shape verdict needs the rank-correlation margin of at least this many clips
MIN_CLIPS_SHAPE = 3
#: the chance levels every method's intact maps are compared with (ssim_samples.csv columns)
CHANCE_KEYS = ["ssim_chance", "ssim_empty_map", "rank_corr_chance"]


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


@dataclass
class _Clips:
    """The checked clips: names, magnitudes [N, F, T], similarities [N, C] and predictions [N]."""

    names: list[str]
    mag: torch.Tensor
    sims: torch.Tensor
    pred: torch.Tensor
    #: clip -> 1/0 when the model can tell whether the clip is like its training audio, else None
    in_domain: dict[str, int | None]


def run_sanity(cfg: SanityConfig, reporter: Reporter | None = None) -> dict:
    """Run both checks, write ssim.csv, prompt_sensitivity.csv, summary.json and plots; return the summary."""
    from lmaczs_cli.data.prompts import check_template, label_prompts
    from lmaczs_cli.data.registry import select_items
    from lmaczs_cli.explainers import create_explainer
    from lmaczs_cli.jobs.text_embedding import embed_prompts
    from lmaczs_cli.models.registry import load_model
    from lmaczs_cli.outdir import OutDir, check_out_dir
    from lmaczs_cli.preflight import check_ready

    rep, run = reporter or Reporter(), cfg.run
    if cfg.mode not in ("cascading", "independent"):
        raise UsageError(f"--mode {cfg.mode!r}: expected cascading or independent")
    check_template(cfg.prompt_template)
    sel = select_items(cfg.data)
    check_out_dir(cfg.out)
    check_ready("sanity-check", run, cfg.methods, cfg.method_options)
    model = load_model(run.clap, run.clap_ckpt, run.tokenizer_dir, run.device, run.seed)
    text = embed_prompts(model, label_prompts(sel.labels, cfg.prompt_template), rep).float()
    explainers = {m: create_explainer(m, model, **cfg.method_options.get(m, {})) for m in cfg.methods}
    record = RunRecord("sanity-check", model, explainers, cfg.method_options, run)
    for w in trust_warnings(model, cfg.run.precision):
        rep.warn(w)
    clips = _load_clips(model, sel.items, text, run, rep)
    warning = domain_warning(clips.in_domain, model.name, "ssim_samples.csv")
    if warning:
        rep.warn(warning)
    ssim_rows, base = _randomisation(model, explainers, clips, text, cfg, rep)
    sens_rows = _prompt_sensitivity(model, explainers, clips, text, sel.labels, base, cfg)
    with OutDir(cfg.out) as out:
        summary = _write_outputs(out, cfg, list(explainers), ssim_rows, sens_rows)
        failed = [r["method"] for r in summary["methods"] if not r["passed"]]
        if failed:
            rep.warn(f"{', '.join(failed)}: the maps survive model randomisation (SSIM after the last block "
                     f"> {PASS_SSIM}): they do not show what this model computes")
        record.write(cfg.out, rep.warnings, {"summary": summary})
    for row in summary["methods"]:
        rep.result(row)
    return summary


SSIM_COLUMNS = ["method", "step", "block", "metric", "mean", "ci_low", "ci_high", "n"]
#: ssim.csv's metrics per (method, step): the similarities to the intact maps, the level, the
#: rank correlation's margin over chance (paired per clip), and the chance levels (intact step only)
SUMMARY_METRICS = ["ssim", "mask_mean_ratio", "rank_corr", "rank_corr_above_chance", "empty_keeps_s",
                   *CHANCE_KEYS]
SENS_COLUMNS = ["method", "clip", "prompt", "true_prompt", "is_true", "similarity", "mask_mean",
                "ssim_to_true"]


def _write_outputs(out, cfg: SanityConfig, methods: list[str], ssim_rows: list[dict],
                   sens_rows: list[dict]) -> dict:
    """Write the tables, plots and summary.json; methods checked by earlier runs here are kept."""
    from lmaczs_cli import metrics as M
    from lmaczs_cli.outputs import write_text_atomic
    from lmaczs_cli.render import render_scatter, render_ssim

    def mine(r) -> bool:
        return r.get("method") in methods

    def whole(r) -> tuple:
        return tuple(str(v) for v in r.values())

    ssim_summary = [r for r in M.summarise(ssim_rows, SUMMARY_METRICS, ["method", "step", "block"])
                    if r["n"] or r["metric"] not in CHANCE_KEYS]  # chance levels: intact step only
    all_ssim = out.update_table("ssim.csv", ssim_summary, SSIM_COLUMNS, whole, mine)
    all_samples = out.update_table("ssim_samples.csv", ssim_rows,
                     ["method", "step", "block", "clip", "ssim", "mask_mean_ratio", "rank_corr",
                      "rank_corr_above_chance", "empty_keeps_s", *CHANCE_KEYS, "in_domain"],
                     whole, mine)
    all_sens = out.update_table("prompt_sensitivity.csv", sens_rows, SENS_COLUMNS, whole, mine)
    chance = {r["method"]: float(r["mean"]) for r in all_ssim if r.get("metric") == "ssim_chance"}
    render_ssim(cfg.out / "ssim.png", [r for r in all_ssim if r.get("metric", "ssim") == "ssim"],
                cfg.mode, PASS_SSIM, chance)
    render_scatter(cfg.out / "mask_vs_similarity.png", [
        {"method": r["method"], "condition": "clean", "similarity": float(r["similarity"]),
         "mask_mean": float(r["mask_mean"])} for r in all_sens])
    every = list(dict.fromkeys(r["method"] for r in all_ssim))
    write_text_atomic(cfg.out / "summary.json",
                      json.dumps(_summary(all_ssim, all_sens, every, all_samples), indent=2))
    return _summary(ssim_summary, sens_rows, methods, ssim_rows)


def _load_clips(model: ZeroShotModel, items: list, text: torch.Tensor, run: RunOptions,
                rep: Reporter) -> _Clips:
    """First windows of the usable clips, in batches; unusable ones are reported and skipped."""
    from torch.utils.data import DataLoader

    from lmaczs_cli.data.loading import ClipDataset, collate_clips

    ds = ClipDataset(items, model.sample_rate, model.window_samples, crop="start", fit=model.fit_window)
    names, mags, embs, known = [], [], [], []
    for batch in DataLoader(ds, batch_size=run.batch_size, num_workers=run.num_workers,
                            collate_fn=collate_clips):
        good = [i for i, e in enumerate(batch["error"]) if e is None]
        for e in batch["error"]:
            if e is not None:
                rep.error(f"lmaczs: {e}")
        if good:
            with torch.no_grad():
                mag, _ = model.spectrogram(batch["wave"][good].to(model.device))
                enc = model.encode(mag)
            embs.append(enc.embedding.float())
            flags = model.domain_check(embs[-1], enc, mag)
            known += [None] * len(good) if flags is None else [int(f) for f in flags]
            mags.append(mag)
            names += [batch["path"][i] for i in good]
    if not names:
        raise UsageError("no usable clips to check")
    sims = torch.cat(embs) @ text.T
    return _Clips(names, torch.cat(mags), sims, sims.argmax(-1), dict(zip(names, known, strict=True)))


def _randomisation(model, explainers: dict, clips: _Clips, text, cfg: SanityConfig,
                   rep: Reporter) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """SSIM and rank correlation of every method's maps to its intact maps at each randomisation
    step, per clip; the intact step's rows also carry the chance levels (:func:`chance_levels`)."""
    from lmaczs_cli import metrics as M

    blocks = _blocks(model, cfg.granularity)
    by_name = dict(blocks)
    steps = randomisation_steps([n for n, _ in blocks], cfg.mode)
    rows: list[dict] = []
    base: dict[str, torch.Tensor] = {}
    chance: dict[str, dict[str, torch.Tensor]] = {}
    with rep.progress(len(steps) * len(explainers), "sanity-check") as advance:
        for step in steps:
            chosen = [(n, by_name[n]) for n in step.blocks]
            with randomised(model, chosen, cfg.run.seed + 1000 * step.index):
                # the intact model's similarities are the clips' own (no second encode at step 0)
                known = clips.sims.gather(1, clips.pred[:, None])[:, 0] if step.index == 0 else None
                empty_keeps = empty_keeps_similarity(model, clips.mag, text[clips.pred], cfg.run.batch_size,
                                                     known)
                for name, ex in explainers.items():
                    masks = _all_masks(model, ex, clips.mag, text[clips.pred], cfg.run.batch_size)
                    if name not in base:  # the intact step: its maps and their chance levels
                        base[name] = masks
                        chance[name] = chance_levels(masks, clips.pred, cfg.run.seed)
                    levels = chance[name]
                    s, rank = M.ssim(base[name], masks), M.rank_correlation(base[name], masks)
                    # the randomised maps' level relative to the intact ones: a map that vanishes
                    # "passes" on SSIM without showing anything; this makes it visible
                    intact = base[name].float().mean((-2, -1))
                    ratio = masks.float().mean((-2, -1)) / intact  # NaN (skipped) for an empty intact map
                    ratio[intact <= 0] = float("nan")
                    for j, clip in enumerate(clips.names):
                        row = {"method": name, "step": step.index, "block": step.label, "clip": clip,
                               "ssim": float(s[j]), "mask_mean_ratio": float(ratio[j]),
                               "rank_corr": float(rank[j]),
                               "rank_corr_above_chance": float(rank[j] - levels["rank_corr_chance"][j]),
                               "empty_keeps_s": float(empty_keeps[j]), "in_domain": clips.in_domain[clip]}
                        if step.index == 0:
                            row.update({k: float(v[j]) for k, v in levels.items()})
                        rows.append(row)
                    advance(1)
    return rows, base


@torch.no_grad()
def empty_keeps_similarity(model: ZeroShotModel, mag: torch.Tensor, text: torch.Tensor,
                           batch_size: int, sims: torch.Tensor | None = None) -> torch.Tensor:
    """1.0 per clip where the model matches an empty clip (all of |X| masked out) to the clip's
    prompt ``text`` [N, D] at least as well as it matches the clip, else 0.0 [N]. ``sims`` [N]:
    the clips' similarities to their prompts when already known (else the clips are encoded).

    Where it is 1, nothing in the clip is evidence for the prompt to *this* model (removing all
    of it does not lower the match), so a faithful evidence map of it is empty: a map that fades
    on a randomised model is then what the model warrants, not a failure to show its shape.
    """
    if sims is None:
        emb = torch.cat([model.encode(mag[i : i + batch_size]).embedding.float()
                         for i in range(0, mag.shape[0], batch_size)])
        sims = (emb * text.float()).sum(-1)
    return ((model.silence_embedding() * text.float()).sum(-1) >= sims.float()).double()


def chance_levels(maps: torch.Tensor, classes: torch.Tensor | None = None, seed: int = 0
                  ) -> dict[str, torch.Tensor]:
    """What the randomisation similarities would be with no shape kept, per clip [N] each.

    ``ssim_chance`` / ``rank_corr_chance``: each clip's intact map against the intact map of
    another clip (:func:`chance_partners`: seeded, of another predicted class where there is
    one, so the pair shares neither the clip nor the prompt); ``ssim_empty_map``: against an
    empty map. SSIM counts bins that are empty in both maps as agreement, so sparse maps score
    high against any other sparse or empty map; rank correlation does not. NaN with a single
    clip (no other clip to compare with).
    """
    from lmaczs_cli import metrics as M

    n = maps.shape[0]
    empty = M.ssim(maps, torch.zeros_like(maps))
    if n < 2:
        nan = torch.full((n,), float("nan"), dtype=torch.float64)
        return {"ssim_chance": nan, "ssim_empty_map": empty, "rank_corr_chance": nan.clone()}
    other = maps[chance_partners(n, classes, seed)]
    return {"ssim_chance": M.ssim(maps, other), "ssim_empty_map": empty,
            "rank_corr_chance": M.rank_correlation(maps, other)}


def chance_partners(n: int, classes: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """For each of ``n`` clips (n >= 2) the index of another clip, drawn with ``seed``: one of a
    different class in ``classes`` [n] where there is one, else any other clip."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cls = None if classes is None else classes.detach().cpu().numpy()
    out = []
    for j in range(n):
        others = [k for k in range(n) if k != j]
        unlike = others if cls is None else [k for k in others if cls[k] != cls[j]]
        out.append(int(rng.choice(unlike or others)))
    return torch.tensor(out, dtype=torch.long)


def _prompt_sensitivity(model, explainers: dict, clips: _Clips, text, labels: list[str],
                        base: dict[str, torch.Tensor], cfg: SanityConfig) -> list[dict]:
    """Maps for unrelated prompts vs the predicted prompt's: SSIM, similarity and mask mean per pair."""
    import numpy as np

    from lmaczs_cli import metrics as M

    rng = np.random.default_rng(cfg.run.seed)
    c, sims = clips.pred, clips.sims
    n_wrong = min(cfg.wrong_prompts, len(labels) - 1)
    wrong = [rng.choice([k for k in range(len(labels)) if k != int(c[j])], n_wrong, replace=False)
             for j in range(len(clips.names))]
    rows = []
    for name, ex in explainers.items():
        for w in range(n_wrong):
            idx = torch.tensor([int(wrong[j][w]) for j in range(len(clips.names))], device=clips.mag.device)
            masks = _all_masks(model, ex, clips.mag, text[idx], cfg.run.batch_size)
            s = M.ssim(base[name], masks)
            rows += [_sens_row(name, clip, labels, int(idx[j]), int(c[j]), sims[j], masks[j], float(s[j]))
                     for j, clip in enumerate(clips.names)]
        rows += [_sens_row(name, clip, labels, int(c[j]), int(c[j]), sims[j], base[name][j], 1.0)
                 for j, clip in enumerate(clips.names)]
    return rows


def _sens_row(method: str, clip: str, labels: list[str], prompt: int, true: int, sims, mask,
              ssim: float) -> dict:
    return {"method": method, "clip": clip, "prompt": labels[prompt], "true_prompt": labels[true],
            "is_true": int(prompt == true), "similarity": float(sims[prompt]),
            "mask_mean": float(mask.mean()), "ssim_to_true": ssim}


def evidence_split(samples: list[dict], method: str) -> dict[str, dict[str, Any]] | None:
    """``method``'s clips after the last randomisation step, split by whether the randomised model
    still hears evidence in the clip (``heard``: an empty clip matches the prompt worse than the
    clip) or not (``hears_nothing``). Per group: ``n``, the median of the randomised maps' mask
    mean over the intact ones (``mask_mean_ratio``), the mean rank correlation to the intact maps,
    and its mean margin over chance with a 95 % bootstrap CI (NaN with fewer than
    :data:`MIN_CLIPS_SHAPE` ranked clips). None when there are no randomised rows (rows may come
    back from CSV as strings; an older run's rows have no ``empty_keeps_s``)."""
    import numpy as np

    from lmaczs_cli import metrics as M

    mine = [r for r in samples if r.get("method") == method and (M.cell_float(r.get("step")) or 0) > 0]
    if not mine or any(M.cell_float(r.get("empty_keeps_s")) is None for r in mine):
        return None
    last = max(M.cell_float(r["step"]) for r in mine)
    final = [r for r in mine if M.cell_float(r["step"]) == last]
    nan = float("nan")
    out: dict[str, dict[str, Any]] = {}
    for name, flag in (("heard", 0.0), ("hears_nothing", 1.0)):
        rows = [r for r in final if M.cell_float(r["empty_keeps_s"]) == flag]
        stats = {x["metric"]: x for x in M.summarise(rows, ["rank_corr", "rank_corr_above_chance"], [])}
        ratio = [v for v in (M.cell_float(r.get("mask_mean_ratio")) for r in rows) if v is not None]
        margin = stats.get("rank_corr_above_chance", {})
        enough = margin.get("n", 0) >= MIN_CLIPS_SHAPE
        out[name] = {"n": len(rows),
                     "mask_mean_ratio": float(np.median(ratio)) if ratio else nan,
                     "rank_corr": float(stats.get("rank_corr", {}).get("mean", nan)),
                     "rank_corr_above_chance": float(margin["mean"]) if enough else nan,
                     "rank_corr_above_chance_ci": [float(margin["ci_low"]), float(margin["ci_high"])]
                     if enough else [nan, nan]}
    return out


def _summary(ssim_summary: list[dict], sens_rows: list[dict], methods: list[str],
             samples: list[dict] | None = None) -> dict:
    """Per method: the SSIM and rank-correlation curves with their chance levels, SSIM to unrelated
    prompts, corr(mask mean, s), passed or not, whether the shape outlives randomisation, and
    (with the per-clip ``samples``) the last step split by evidence (:func:`evidence_split`;
    rows may be fresh or read back from CSV)."""
    import numpy as np

    def curve(m: str, metric: str) -> list[dict]:
        return sorted((r for r in ssim_summary if r["method"] == m and r.get("metric", "ssim") == metric),
                      key=lambda r: int(r["step"]))

    def first(rows: list[dict], key: str = "mean") -> float:
        return float(rows[0][key]) if rows else float("nan")

    out = []
    for m in methods:
        values = [float(r["mean"]) for r in curve(m, "ssim")]
        margin = [r for r in curve(m, "rank_corr_above_chance")[-1:]
                  if float(r.get("n") or 0) >= MIN_CLIPS_SHAPE]
        lo, hi = first(margin, "ci_low"), first(margin, "ci_high")
        mine = [r for r in sens_rows if r["method"] == m]
        wrong = [float(r["ssim_to_true"]) for r in mine if not int(float(r["is_true"]))]
        s = np.array([float(r["similarity"]) for r in mine])
        mm = np.array([float(r["mask_mean"]) for r in mine])
        varies = len(s) > 1 and s.std() > 0 and mm.std() > 0
        corr = float(np.corrcoef(s, mm)[0, 1]) if varies else float("nan")
        out.append({"method": m, "ssim_curve": values,
                    "mask_mean_ratio_curve": [float(r["mean"]) for r in curve(m, "mask_mean_ratio")],
                    "ssim_chance": first(curve(m, "ssim_chance")),
                    "ssim_empty_map": first(curve(m, "ssim_empty_map")),
                    "rank_corr_curve": [float(r["mean"]) for r in curve(m, "rank_corr")],
                    "rank_corr_chance": first(curve(m, "rank_corr_chance")),
                    "rank_corr_above_chance_ci": [lo, hi],
                    # per step: the share of clips whose empty clip matches the prompt as well as the
                    # clip does, i.e. where the (randomised) model hears no evidence in the clip
                    "empty_keeps_s_curve": [float(r["mean"]) for r in curve(m, "empty_keeps_s")],
                    # None: too few ranked clips (constant or NaN maps, one clip) or an older run's rows
                    "shape_kept": bool(lo > 0) if lo == lo else None,
                    "last_step_by_evidence": evidence_split(samples or [], m),
                    "ssim_true_vs_wrong_prompt": float(np.mean(wrong)) if wrong else float("nan"),
                    "corr_mask_mean_similarity": corr,
                    "passed": bool(len(values) > 1 and values[-1] <= PASS_SSIM)})
    return {"methods": out, "pass_ssim": PASS_SSIM}
