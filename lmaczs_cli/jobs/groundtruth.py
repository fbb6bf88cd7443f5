"""Explanations measured against the synthetic world's ground truth (any :class:`Explainer`).

On held-out synthetic scenes, with every class prompt ("this is a sound of {name}")
on every clip, present and absent events alike:

- ``mae``: mean |s - s~| over all (clip, prompt) pairs, s~ = t . f(M * X);
- ``corr``: Pearson r between mask mean and s over all pairs;
- ``pointing``: energy pointing game for present events: the bin where M * X
  peaks lies in the event's ground-truth mask (events whose mask is empty skipped), also
  split by scenes with one event and with several (``pointing_single_event`` /
  ``pointing_multi_event``: where other events interfere with the prompted one), and
  ``pointing_within_<tol>``: the share of events that point right *and* whose pair keeps
  |s - s~| <= tol (what ``--ceiling``'s ``pointing_at_<tol>`` bounds);
- ``auc``: ROC AUC of the mask mean separating present from absent prompts
  (``auc_sim``: the same for s itself, the model's own ceiling);
- ``event_f1``, ``segment_f1``, ``psds1``: *when*: each pair's activity over time
  (:mod:`lmaczs_cli.events`) decoded into segments and scored like sound event detection
  against the scenes' event times (:class:`SedTally`).

Run it on a decoder checkpoint (prints one JSON object)::

    python -m lmaczs_cli.dev.groundtruth --decoder runs/small/best.pt --clap small --n 300

``--ceiling`` scores masks built from the ground truth itself instead, for pointing and
faithfulness together (:func:`oracle_ceiling`): what a faithful explainer could reach.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmaczs_cli.errors import UsageError
from lmaczs_cli.explainers.base import Explainer
from lmaczs_cli.metrics import auc, bootstrap_ci, energy_pointing_game, mask_precision_recall
from lmaczs_cli.models.base import ZeroShotModel
from lmaczs_cli.objective import pearson_from_sums, pearson_sums

#: world seed of held-out scenes (different from any training world, split "test")
EVAL_SEED = 1_000_003
#: |s - s~| tolerances of ``pointing_within_<tol>`` and of the ceiling's ``pointing_at_<tol>``
JOINT_TOLERANCES = (0.05, 0.1)


def _check_grid(model: ZeroShotModel) -> None:
    """Refuse a model whose spectrogram grid is not the synthetic world's (where the masks live)."""
    from lmaczs_cli.data import synthetic as world

    if model.sample_rate != world.SAMPLE_RATE or (model.n_freqs, model.n_frames) != (
        world.N_FREQS, world.N_FRAMES
    ):
        raise UsageError(
            f"ground-truth masks live on the synthetic world's grid ({world.SAMPLE_RATE} Hz, "
            f"[{world.N_FREQS}, {world.N_FRAMES}]); --clap {model.name} uses another one"
        )


#: an event is *quiet* when its ground-truth bins hold less than this share of the clip's power
QUIET_SHARE = 0.1


def ci95(values: np.ndarray) -> list[float]:
    """95 % percentile-bootstrap interval of the mean of ``values`` over events (1000 resamples)."""
    _, lo, hi = bootstrap_ci(np.asarray(values, dtype=float))
    return [lo, hi]


class EventTally:
    """Per-event ground-truth scores of one explainer, one row per present event.

    An event is *loudest* when the clip's own loudest bin lies in its ground-truth mask
    (an all-ones mask points at it); pointing is split by that and by the scene's size, and
    ``pointing_gain`` is the pointing game minus the all-ones mask's on the same events.
    Precision and recall are energy-weighted with the soft mask (``|X|`` per bin, as
    ``evaluate`` does): the share of ``M |X|`` inside the event, and of the event's ``|X|`` kept.
    ``quiet_recall``: recall of events whose bins hold < :data:`QUIET_SHARE` of the clip's power;
    ``quiet_recall_heard``: the same over the quiet events the model *hears* (their prompt's
    similarity to the clip beats every absent class prompt's). An evidence map of a prompt the
    model ranks below an absent one has no evidence to show, so the split says whether a miss is
    the explainer's or the model's.
    """

    def __init__(self, tolerances: tuple[float, ...] = JOINT_TOLERANCES) -> None:
        self.tolerances = tolerances
        self.rows: list[dict[str, Any]] = []

    def add(
        self, mask: torch.Tensor, mag: torch.Tensor, gt: torch.Tensor, multi: bool, err: float,
        cls: str = "", heard: bool = True,
    ) -> None:
        """Score one present event: ``mask``, ``mag``, ``gt`` are [1, F, T]; ``err`` = |s - s~|;
        ``heard``: the event's prompt beats every absent prompt on this clip."""
        hit = bool(energy_pointing_game(mask, mag, gt)[0])
        loudest = bool(energy_pointing_game(torch.ones_like(mag), mag, gt)[0])
        pr = mask_precision_recall(mask, gt, energy=mag, threshold=None)
        power = mag.double().square()
        share = float((power * gt).sum() / power.sum().clamp_min(1e-30))
        self.rows.append({
            "hit": hit, "loudest": loudest, "multi": multi, "err": err, "cls": cls, "share": share,
            "heard": heard,
            "precision": float(pr["precision"][0]), "recall": float(pr["recall"][0]),
        })

    def _col(self, key: str, where: Callable[[dict[str, Any]], bool] = lambda r: True) -> np.ndarray:
        return np.asarray([float(r[key]) for r in self.rows if where(r)], dtype=float)

    def metrics(self) -> dict[str, Any]:
        def mean(x: np.ndarray) -> float:
            return float(x.mean()) if len(x) else float("nan")

        hits = self._col("hit")
        n = len(hits)
        gain = hits - self._col("loudest")
        not_loud = self._col("hit", lambda r: not r["loudest"])
        quiet = self._col("recall", lambda r: r["share"] < QUIET_SHARE)
        quiet_heard = self._col("recall", lambda r: r["share"] < QUIET_SHARE and r["heard"])
        prec, rec = self._col("precision"), self._col("recall")
        classes = sorted({r["cls"] for r in self.rows if r["cls"]})
        out: dict[str, Any] = {
            "pointing": mean(hits),
            "pointing_gain": mean(gain),
            "pointing_single_event": mean(self._col("hit", lambda r: not r["multi"])),
            "pointing_multi_event": mean(self._col("hit", lambda r: r["multi"])),
            "pointing_loudest": mean(self._col("hit", lambda r: r["loudest"])),
            "pointing_not_loudest": mean(not_loud),
            **{
                f"pointing_within_{t:g}": mean(self._col("hit") * (self._col("err") <= t))
                for t in self.tolerances
            },
            "precision": mean(prec),
            "recall": mean(rec),
            "quiet_recall": mean(quiet),
            "quiet_recall_heard": mean(quiet_heard),
            "pointing_events": n,
            "pointing_events_multi": int(sum(r["multi"] for r in self.rows)),
            "pointing_events_not_loudest": len(not_loud),
            "quiet_events": len(quiet),
            "quiet_events_heard": len(quiet_heard),
            "pointing_not_loudest_by_class": {
                c: mean(self._col("hit", lambda r, c=c: r["cls"] == c and not r["loudest"]))
                for c in classes
            },
            "ci95": {
                "pointing": ci95(hits), "pointing_gain": ci95(gain),
                "pointing_not_loudest": ci95(not_loud), "precision": ci95(prec),
                "recall": ci95(rec), "quiet_recall": ci95(quiet), "quiet_recall_heard": ci95(quiet_heard),
            },
        }
        return out


#: segment decoding grid of ``--tune-segments`` (thresholds on the activity, gaps bridged in seconds)
TUNE_THRESHOLDS = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7)
TUNE_GAPS = (0.1, 0.3, 0.5, 0.8, 1.2)


def _writable(frame: Any) -> Any:
    """``frame`` as a DataFrame whose ``to_numpy`` gives writable arrays: sed_scores_eval's Cython
    code needs them, and pandas >= 3 (copy-on-write) hands out read-only views."""
    import pandas as pd

    class Series(pd.Series):
        @property
        def _constructor(self):
            return Series

        def to_numpy(self, *args: Any, **kwargs: Any) -> np.ndarray:
            return np.array(super().to_numpy(*args, **kwargs))

    class Frame(pd.DataFrame):
        @property
        def _constructor(self):
            return Frame

        @property
        def _constructor_sliced(self):
            return Series

        def to_numpy(self, *args: Any, **kwargs: Any) -> np.ndarray:
            return np.array(super().to_numpy(*args, **kwargs))

    return Frame(frame)


class SedTally:
    """Time spans scored like sound event detection: every (clip, class prompt) activity curve
    (:func:`lmaczs_cli.events.activity`) against the scene's event times.

    ``metrics``: event-based and segment-based micro F1 with ``sed_eval``
    (:class:`lmaczs_cli.events.SedScorer`), segments decoded with the method's threshold
    (:data:`lmaczs_cli.events.DECODING`, chosen on another world seed); 95 % bootstrap CIs over
    clips; and PSDS1 (``sed_scores_eval``: DTC = GTC = 0.7, alpha_st = 1, max eFPR 100/h), which
    needs no threshold (the curves are the detection scores).
    """

    def __init__(self, classes: list[str], frame_seconds: float, duration: float) -> None:
        self.classes, self.frame_seconds, self.duration = classes, frame_seconds, duration
        self.curves: list[np.ndarray] = []  # [P, T] per clip
        self.reference: list[list[tuple[str, float, float, str]]] = []

    def add(self, scene: Any, curves: np.ndarray) -> None:
        name = f"{scene.seed}_{scene.index}"
        self.curves.append(np.asarray(curves, dtype=np.float64))
        self.reference.append([(name, e.onset, e.offset, e.cls) for e in scene.events])

    def decoded(self, i: int, threshold: float, min_gap: float) -> list[tuple[str, float, float, str]]:
        from lmaczs_cli.events import segments

        name = self.reference[i][0][0] if self.reference[i] else str(i)
        return [(name, sg.onset, sg.offset, c) for j, c in enumerate(self.classes)
                for sg in segments(self.curves[i][j], self.frame_seconds, threshold, min_gap=min_gap,
                                   duration=self.duration)]

    def counts(self, threshold: float, min_gap: float) -> np.ndarray:
        """[clips, 2, 3]: event / segment x TP, FP, FN."""
        from lmaczs_cli.events import SedScorer

        scorer = SedScorer(self.classes)
        for i, ref in enumerate(self.reference):
            scorer.add(ref, self.decoded(i, threshold, min_gap))
        return scorer.counts

    def psds(self) -> float:
        """PSDS1 of the activity curves (threshold-free), NaN without ``sed_scores_eval``."""
        try:
            from sed_scores_eval.base_modules.scores import create_score_dataframe
            from sed_scores_eval.intersection_based import psds
        except ImportError:
            return float("nan")
        step = 4  # 40 ms score frames (max over 4 STFT frames): the same ROC, far fewer thresholds
        seen = {lab for ref in self.reference for *_, lab in ref}  # PSDS needs events of every class
        keep = [j for j, c in enumerate(self.classes) if c in seen]
        scores, truth, durations = {}, {}, {}
        for i, (curves, ref) in enumerate(zip(self.curves, self.reference, strict=True)):
            name = ref[0][0] if ref else str(i)
            t = curves.shape[1] // step * step
            c = np.round(curves[keep, :t].reshape(len(keep), -1, step).max(-1), 3)
            stamps = np.arange(c.shape[1] + 1) * step * self.frame_seconds
            stamps[-1] = min(stamps[-1], self.duration)
            scores[name] = _writable(create_score_dataframe(c.T, stamps, [self.classes[j] for j in keep]))
            truth[name] = [(a, min(b, stamps[-1]), lab) for _, a, b, lab in ref]
            durations[name] = float(stamps[-1])
        value, *_ = psds(scores, truth, durations, dtc_threshold=0.7, gtc_threshold=0.7,
                         alpha_ct=0.0, alpha_st=1.0, unit_of_time="hour", max_efpr=100.0)
        return float(value)

    def metrics(self, method: str) -> dict[str, Any]:
        from lmaczs_cli.events import decoding_for, f1, f1_ci95

        thr, gap = decoding_for(method)
        c = self.counts(thr, gap)
        ev, seg = c[:, 0], c[:, 1]
        return {
            "event_f1": f1(*ev.sum(0)), "segment_f1": f1(*seg.sum(0)), "psds1": self.psds(),
            "event_counts": dict(zip(("tp", "fp", "fn"), ev.sum(0).tolist(), strict=True)),
            "segment_threshold": thr, "segment_min_gap": gap,
            "ci95_sed": {"event_f1": f1_ci95(ev), "segment_f1": f1_ci95(seg)},
        }

    def tune(self) -> dict[str, Any]:
        """Event-F1 for every threshold and gap of the grid, and the best pair (for ``--tune-segments``)."""
        from lmaczs_cli.events import f1

        grid = [{"threshold": t, "min_gap": g, "event_f1": f1(*(c := self.counts(t, g))[:, 0].sum(0)),
                 "segment_f1": f1(*c[:, 1].sum(0))} for t in TUNE_THRESHOLDS for g in TUNE_GAPS]
        return {"best": max(grid, key=lambda r: r["event_f1"]), "grid": grid}


def _pair_masks(
    model: ZeroShotModel, explainer: Explainer, mag: torch.Tensor, enc: Any, text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks [B, P, F, T] of every (clip, prompt) pair and s~ [B, P].

    An explainer with ``pairs_at_once`` (per-clip optimisation) gets all B * P pairs in one call.
    """
    b, p = mag.shape[0], text.shape[0]
    if getattr(explainer, "pairs_at_once", False):
        mags, rows = mag.repeat_interleave(p, 0), text.repeat(b, 1)
        m = explainer.masks(model, mags, rows)
        with torch.no_grad():
            st = (model.encode(m * mags).embedding.float() * rows.float()).sum(-1)
        return m.view(b, p, *m.shape[1:]), st.view(b, p).cpu()
    masks, st = [], []
    for j in range(p):
        m = explainer.masks(model, mag, text[j].expand(b, -1), enc)
        with torch.no_grad():
            st.append((model.encode(m * mag).embedding.float() @ text[j].float()).cpu())
        masks.append(m)
    return torch.stack(masks, 1), torch.stack(st, 1)


def faithfulness_errors(s: torch.Tensor, masked: torch.Tensor, present: torch.Tensor) -> dict[str, float]:
    """``|s - s~|`` over all pairs, present pairs and absent ones, and the signed ``s~ - s`` on
    present pairs. Present pairs are what an explanation is for; absent ones carry the floor of
    silence's own similarity (``--ceiling``'s ``empty_mask_abs_err_absent``)."""
    err = (s - masked).abs()
    return {
        "mae": float(err.mean()),
        "mae_present": float(err[present].mean()),
        "mae_absent": float(err[~present].mean()),
        "masked_minus_s_present": float((masked - s)[present].mean()),
    }


def groundtruth_metrics(
    model: ZeroShotModel,
    explainer: Explainer,
    scenes: Any,
    *,
    batch_size: int = 8,
    template: str | None = None,
    advance: Callable[[int], None] | None = None,
    tune_segments: bool = False,
) -> dict[str, float]:
    """Ground-truth metrics of ``explainer`` on ``scenes`` (a ``SyntheticDataset``), time spans
    scored like SED included (:class:`SedTally`; ``tune_segments``: also its decoding grid)."""
    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.events import activity_from_sums

    _check_grid(model)
    classes = list(scenes.classes)
    prompts = world.canonical_prompts(classes, template or world.PROMPT_TEMPLATE)
    dev = model.device
    text = model.embed_text(prompts)  # [P, D]
    if hasattr(explainer, "reference"):
        explainer.reference = text  # per-clip LMAC-ZS: tau from the clip's median over every class prompt
    sims, masked, means, present = [], [], [], []
    empty = 0
    tally = EventTally()
    sed = SedTally(classes, model.stft_config.hop_length / model.sample_rate, world.WINDOW_SECONDS)
    for start in range(0, len(scenes), batch_size):
        batch = [scenes.scene(i) for i in range(start, min(start + batch_size, len(scenes)))]
        wave = torch.from_numpy(np.stack([s.wave for s in batch])).to(dev)
        with torch.no_grad():
            mag, _ = model.spectrogram(wave)
            enc = model.encode(mag)
            s = (enc.embedding.float() @ text.float().T).cpu()  # [B, P]
        m, st = _pair_masks(model, explainer, mag, enc, text)
        for i, sc in enumerate(batch):
            absent = [j for j, c in enumerate(classes) if c not in sc.classes]
            loudest_absent = float(s[i, absent].max()) if absent else -float("inf")
            for j, c in enumerate(classes):
                gt = sc.masks.get(c) if sc.masks else None
                if gt is None:
                    continue
                if not gt.any():
                    empty += 1
                    continue
                g = torch.from_numpy(gt).to(dev)[None]
                err = abs(float(s[i, j]) - float(st[i, j]))
                tally.add(m[i : i + 1, j], mag[i : i + 1], g, len(sc.masks) > 1, err, c,
                          heard=float(s[i, j]) > loudest_absent)
        kept = (m * mag[:, None]).sum(-2).double().cpu().numpy()  # [B, P, T]
        energy = mag.sum(-2).double().cpu().numpy()
        for i, sc in enumerate(batch):
            sed.add(sc, np.stack([activity_from_sums(k, energy[i]) for k in kept[i]]))
        sims.append(s)
        masked.append(st)
        means.append(m.float().mean((-2, -1)).cpu())
        present.append(torch.tensor([[c in sc.classes for c in classes] for sc in batch]))
        if advance is not None:
            advance(len(batch))
    s_all, st_all = torch.cat(sims).double(), torch.cat(masked).double()
    mm_all, pres = torch.cat(means).double(), torch.cat(present)
    corr = float(pearson_from_sums(pearson_sums(mm_all, s_all)))  # 0 if a variance vanishes
    mm_present, mm_absent = float(mm_all[pres].mean()), float(mm_all[~pres].mean())
    out = {
        **faithfulness_errors(s_all, st_all, pres),
        "corr": corr,
        **tally.metrics(),
        "auc": auc(mm_all[pres], mm_all[~pres]),
        "auc_sim": auc(s_all[pres], s_all[~pres]),
        "mask_mean_present": mm_present,
        "mask_mean_absent": mm_absent,
        "mask_mean_ratio_absent_present": mm_absent / mm_present if mm_present > 0 else float("nan"),
        "pairs": int(s_all.numel()),
        "clips": int(s_all.shape[0]),
        "events_without_mask": empty,
        **sed.metrics(getattr(explainer, "name", "")),
        **({"segment_tuning": sed.tune()} if tune_segments else {}),
    }
    out["ci95"].update(out.pop("ci95_sed"))
    return out


#: the bundled example clip (``make demo``) is this scene of the synthetic world
DEMO_SCENE = {"seed": 11, "index": 29}


def demo_scene_metrics(
    model: ZeroShotModel, explainer: Explainer, *, template: str | None = None
) -> dict[str, dict[str, float]]:
    """What ``make demo`` shows, scored against the example scene's ground truth.

    The bundled ``assets/examples/scene.wav`` is scene :data:`DEMO_SCENE` of the synthetic
    world (regenerated here for its event masks). Per event of the scene, for its prompt:
    the mask mean over bins where no event is present (outside every event's ground-truth
    mask), the mask mean over the event's own mask, the energy pointing game, the share of
    every event's power the map keeps (``kept_power``), and s, s~.
    """
    from lmaczs_cli.audio import read_audio
    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.explainers.bundled import ASSETS

    _check_grid(model)
    scene = world.generate_scene(DEMO_SCENE["seed"], DEMO_SCENE["index"])
    wave, rate, _ = read_audio(ASSETS / "examples" / "scene.wav")
    if rate != world.SAMPLE_RATE or wave.shape != scene.wave.shape:
        raise UsageError("assets/examples/scene.wav is no longer the synthetic world's demo scene")
    dev = model.device
    gts = {c: torch.from_numpy(m).to(dev) for c, m in (scene.masks or {}).items()}
    no_event = ~torch.stack(list(gts.values())).any(0)
    prompts = world.canonical_prompts(list(gts), template or world.PROMPT_TEMPLATE)
    text = model.embed_text(prompts).float()
    with torch.no_grad():
        mag, _ = model.spectrogram(torch.from_numpy(wave)[None].to(dev))
        enc = model.encode(mag)
    masks, st = _pair_masks(model, explainer, mag, enc, text)
    s = (enc.embedding.float() @ text.T).cpu()
    power = mag[0].float().square()
    out = {}
    for j, (c, g) in enumerate(gts.items()):
        m = masks[0, j]
        out[c] = {
            "mask_mean_no_event": float(m[no_event].mean()),
            "mask_mean_event": float(m[g].mean()),
            "mask_mean": float(m.mean()),
            "pointing": bool(energy_pointing_game(m[None], mag, g[None])[0]),
            # the share of each event's power (|X|^2 over its ground-truth bins) the map keeps
            "kept_power": {
                e: float((m * power * ge).sum() / (power * ge).sum().clamp_min(1e-30))
                for e, ge in gts.items()
            },
            "s": float(s[0, j]),
            "s_masked": float(st[0, j]),
        }
    return out


#: oracle mask family: level of the prompted event, of the other events (relative to it),
#: of the background (0 or the event's level), and the share of the event's frames kept
ORACLE_LEVELS = (1.0, 0.01, 0.001)
ORACLE_OTHERS = (0.0, 0.03, 0.1, 0.3, 0.5)
ORACLE_TIME_SHARES = (1.0, 0.5, 0.25, 0.1)
#: the family's first masks keep all of the event's frames at level 1 (shares and levels start at 1);
#: the very first is the event's own mask alone (no other event, no background)
WHOLE_EVENT = slice(0, len(ORACLE_OTHERS) * 2)


def oracle_masks(gt: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Masks [K, F, T] built from event ``gt`` [F, T] and the union ``present`` of all events' masks.

    ``a * g_f + a * e * (others) + b * (background)`` for every level ``a``, other-event share
    ``e``, background ``b`` in {0, a}, and ``g_f``: the event's mask on its first ``f`` of frames.
    """
    g = gt.float()
    others = present.float() * (1 - g)
    background = 1 - torch.maximum(present.float(), g)
    frames = g.any(0).nonzero()[:, 0]
    out = []
    for f in ORACLE_TIME_SHARES:
        part = g.clone()
        part[:, frames[max(1, int(len(frames) * f)) :]] = 0
        for a in ORACLE_LEVELS:
            for e in ORACLE_OTHERS:
                for keep_bg in (False, True):
                    out.append(a * (part + e * others + (background if keep_bg else 0)))
    return torch.stack(out)


def oracle_ceiling(
    model: ZeroShotModel,
    scenes: Any,
    *,
    template: str | None = None,
    tolerances: tuple[float, ...] = JOINT_TOLERANCES,
) -> dict[str, Any]:
    """How far faithfulness and pointing can be had together on ``scenes``, knowing the ground truth.

    For every present event, among the :func:`oracle_masks` whose ``M * X`` peaks inside the
    event's mask, the smallest |s - s~|: ``pointing_at_<tol>`` is the share of events where it
    is at most ``tol`` (an upper estimate of the pointing game a faithful explainer can reach
    with such masks). ``whole_event_pointing_at_<tol>`` allows only the masks that keep all of
    the event at full level (:data:`WHOLE_EVENT`: other events and background at any of the
    family's levels), i.e. explanations that show the whole event; ``multi_event`` repeats
    both for events of scenes with more than one event. Also the all-zero input's similarity
    to each absent prompt versus s: how far an empty mask is from faithful where the event is
    absent; and ``event_mask_*``: |s - s~| (and s~ - s) of each event's own mask alone.
    """
    from lmaczs_cli.data import synthetic as world

    _check_grid(model)
    classes = list(scenes.classes)
    text = model.embed_text(world.canonical_prompts(classes, template or world.PROMPT_TEMPLATE)).float()
    dev = model.device
    s_empty = (model.silence_embedding() @ text.T)[0]
    best, whole, multi, empty_err, event_only, per_event = [], [], [], [], [], 0
    for i in range(len(scenes)):
        sc = scenes.scene(i)
        with torch.no_grad():
            mag, _ = model.spectrogram(torch.from_numpy(sc.wave)[None].to(dev))
            s = (model.encode(mag).embedding.float() @ text.T)[0]
        union = torch.zeros(mag.shape[1:], dtype=torch.bool, device=dev)
        for m in (sc.masks or {}).values():
            union |= torch.from_numpy(m).to(dev)
        for j, c in enumerate(classes):
            if c not in sc.classes:
                empty_err.append(float((s[j] - s_empty[j]).abs()))
                continue
            gt = torch.from_numpy(sc.masks[c]).to(dev)
            if not gt.any():
                continue
            masks = oracle_masks(gt, union)
            per_event = masks.shape[0]
            with torch.no_grad():
                st = model.encode(masks * mag).embedding.float() @ text[j]
            event_only.append(float(st[0] - s[j]))  # the family's first mask is the event's own mask
            hit = energy_pointing_game(masks, mag.expand_as(masks), gt[None].expand_as(masks))
            err = torch.where(hit, (st - s[j]).abs(), torch.full_like(st, float("inf")))
            best.append(float(err.min()))
            whole.append(float(err[WHOLE_EVENT].min()))
            multi.append(len(sc.masks or {}) > 1)
    b, w, mu = np.asarray(best), np.asarray(whole), np.asarray(multi, dtype=bool)

    def share(x: np.ndarray, t: float) -> float:
        return float((x <= t).mean()) if len(x) else float("nan")

    out: dict[str, Any] = {f"pointing_at_{t:g}": share(b, t) for t in tolerances}
    out.update({f"whole_event_pointing_at_{t:g}": share(w, t) for t in tolerances})
    out["multi_event"] = {
        "events": int(mu.sum()),
        **{f"pointing_at_{t:g}": share(b[mu], t) for t in tolerances},
        **{f"whole_event_pointing_at_{t:g}": share(w[mu], t) for t in tolerances},
    }
    out.update({
        "events": len(best),
        "oracle_masks_per_event": per_event,
        "empty_mask_abs_err_absent": float(np.mean(empty_err)) if empty_err else float("nan"),
        # the event's own ground-truth mask (it alone, at full level): how far from s a mask that
        # keeps exactly the event lands, in absolute value and signed (s~ - s)
        "event_mask_abs_err_present": float(np.mean(np.abs(event_only))) if event_only else float("nan"),
        "event_mask_minus_s_present": float(np.mean(event_only)) if event_only else float("nan"),
        "empty_mask_sim_range": [float(s_empty.min()), float(s_empty.max())],
    })
    return out


def export_decoder(run_dir: Path, dest: Path, extra: dict[str, Any]) -> None:
    """Copy ``run_dir/best.pt`` to ``dest/decoder.pt`` and write ``dest/decoder_card.json``
    (``decoder_mel.pt`` and ``decoder_mel_card.json`` for a mel-domain run)."""
    from lmaczs_cli.checkpoints import read_checkpoint
    from lmaczs_cli.explainers.lmaczs import bundled_decoder_name
    from lmaczs_cli.outputs import atomic_path, write_text_atomic

    cfg = json.loads((run_dir / "config.json").read_text())
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines() if x.strip()]
    vals = [r for r in log if r["event"] == "val"]
    held = read_checkpoint(run_dir / "best.pt").get("metrics", {}).get("step")  # --select may not be "val"
    best = next((r for r in vals if r["step"] == held), {})
    name = bundled_decoder_name(cfg["mask_domain"])
    dest.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest / name) as tmp:
        shutil.copyfile(run_dir / "best.pt", tmp)
    card = {
        "command": "lmaczs " + " ".join(cfg.get("argv", [])[1:]),
        "seed": cfg["seed"],
        "steps": log[-1]["step"] if log else None,
        "best_step": held,
        "wall_seconds": log[-1]["time"] if log else None,
        "model_spec": cfg["model_spec"],
        "mask_domain": cfg["mask_domain"],
        "decoder_config": cfg["decoder_config"],
        "loss_weights": cfg["weights"],
        "val_metrics": {k: best[k] for k in ("l_sim", "mae", "corr", "fid_in", "mask_mean") if k in best},
        "lmaczs_version": cfg["lmaczs_version"],
        "torch_version": cfg["torch_version"],
        **extra,
    }
    write_text_atomic(dest / name.replace(".pt", "_card.json"), json.dumps(card, indent=2) + "\n")


#: scene conditions beside the world's own (``--scenes``): crowded scenes and low-SNR mixes
SCENE_CONDITIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "crowded": {"min_events": 3, "max_events": 5},
    "low-snr": {"snr_db": (-5.0, 5.0), "p_silent_background": 0.0},
}
#: the columns of ``--table``
TABLE_KEYS = (
    "pointing", "pointing_gain", "pointing_not_loudest", "precision", "recall", "quiet_recall",
    "quiet_recall_heard", "mae_present", "mae_absent", "mask_mean_present", "mask_mean_absent",
    "event_f1", "segment_f1", "psds1",
)


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per method: the headline numbers, with 95 % CIs where the metrics carry them."""
    lines = ["| method | " + " | ".join(TABLE_KEYS) + " |", "|---" * (len(TABLE_KEYS) + 1) + "|"]
    for name, m in results.items():
        cells = []
        for k in TABLE_KEYS:
            v, ci = m.get(k, float("nan")), m.get("ci95", {}).get(k)
            cells.append(f"{v:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # the older path of `python -m lmaczs_cli.dev.groundtruth`
    from lmaczs_cli.dev.groundtruth import main

    sys.exit(main())
