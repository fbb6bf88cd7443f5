"""*When* the model heard it: an explanation's activity over time, and the segments where it is active.

Pure numpy (no torch), so streamed clips, the public API, the writers and the
ground-truth job share one definition:

- **activity** ``a(t) = sum_f M(f,t) |X(f,t)| / max(sum_f |X(f,t)|, floor)`` per STFT frame:
  the share of the frame's magnitude the map keeps (in [0, 1]). ``floor`` is
  :data:`FLOOR_MEDIAN` x the clip's median frame magnitude (and at least :data:`FLOOR_PEAK` x its
  loudest frame's), so near-silent frames, where any share is meaningless, count for little.
  A mask constant over frequency (sliding windows) gives its own value back; an empty mask 0.
- **segments**: runs of frames with ``a(t) >= LOW_SHARE x threshold`` that reach ``threshold``
  somewhere (hysteresis), gaps shorter than ``min_gap`` seconds bridged, runs shorter than
  ``min_duration`` dropped; each with onset, offset, the time of its peak and its strength (the
  peak activity).

The thresholds and gaps (:data:`DECODING`) were chosen per method on scenes of the synthetic world's
seed 777 (``python -m lmaczs_cli.dev.groundtruth --seed 777 --tune-segments``), never on the
held-out seed the tables report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: a frame's magnitude floor: this share of the clip's median frame magnitude ...
FLOOR_MEDIAN = 0.5
#: ... and at least this share of its loudest frame's (-60 dB)
FLOOR_PEAK = 1e-3
#: a segment starts where the activity reaches the threshold and extends while it stays above
#: this share of it (hysteresis, fixed a priori)
LOW_SHARE = 0.25
#: runs of active frames closer than this (seconds) are one segment; shorter runs are dropped
MIN_GAP = 0.3
MIN_DURATION = 0.1
#: segment decoding per method, (threshold, min_gap), chosen on world seed 777 by event-F1 (see
#: the module docstring); ``default`` for any other method
DECODING: dict[str, tuple[float, float]] = {
    "default": (0.4, 1.2), "lmaczs": (0.4, 1.2), "gradcam": (0.4, 1.2), "sliding-window": (0.6, 0.5),
}


def frame_sums(mask: np.ndarray, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(sum_f M |X|, sum_f |X|)`` of ``mask`` and ``magnitude`` [F, T] (float64 [T] each)."""
    mag = np.abs(np.asarray(magnitude, dtype=np.float64))
    return (np.asarray(mask, dtype=np.float64) * mag).sum(0), mag.sum(0)


def activity_from_sums(kept: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Activity [T] in [0, 1] from per-frame kept and total magnitude (see the module docstring)."""
    kept, energy = np.asarray(kept, dtype=np.float64), np.asarray(energy, dtype=np.float64)
    if energy.size == 0:
        return np.zeros(0)
    floor = max(FLOOR_MEDIAN * float(np.median(energy)), FLOOR_PEAK * float(energy.max()), 1e-12)
    return np.clip(kept / np.maximum(energy, floor), 0.0, 1.0)


def activity(mask: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """Activity [T] of ``mask`` on ``magnitude`` (both [F, T])."""
    return activity_from_sums(*frame_sums(mask, magnitude))


def decoding_for(method: str) -> tuple[float, float]:
    """``(threshold, min_gap)`` chosen for ``method`` (:data:`DECODING`)."""
    return DECODING.get(method, DECODING["default"])


@dataclass(frozen=True)
class Segment:
    """A span where the explanation is active: seconds from the clip's start, and its peak activity."""

    onset: float
    offset: float
    peak_time: float
    strength: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def segments(
    values: Sequence[float] | np.ndarray,
    frame_seconds: float,
    threshold: float,
    *,
    min_gap: float = MIN_GAP,
    min_duration: float = MIN_DURATION,
    duration: float | None = None,
) -> list[Segment]:
    """Segments of an activity curve sampled every ``frame_seconds`` (frame t centred at t x that).

    Hysteresis, as SED decoders do: a run of frames at or above ``LOW_SHARE x threshold`` is active
    when one of its frames reaches ``threshold`` (> 0); active runs closer than ``min_gap`` seconds
    are joined; runs shorter than ``min_duration`` are dropped. Onset: the first active
    frame's time; offset: one frame after the last (at most ``duration``, the clip's length).
    """
    a = np.asarray(values, dtype=np.float64)
    high = max(float(threshold), 1e-12)
    on = a >= high * LOW_SHARE
    if not (a >= high).any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    runs = [[int(s), int(e)] for s, e in zip(edges[::2], edges[1::2], strict=True)  # [start, end)
            if a[s:e].max() >= high]
    merged = [runs[0]]
    for s, e in runs[1:]:
        if (s - merged[-1][1]) * frame_seconds < min_gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    end = len(a) * frame_seconds if duration is None else float(duration)
    out = []
    for s, e in merged:
        onset, offset = s * frame_seconds, min(e * frame_seconds, end)
        if offset - onset < min_duration:
            continue
        peak = s + int(np.argmax(a[s:e]))
        out.append(Segment(onset, offset, peak * frame_seconds, float(a[peak])))
    return out


# -- scoring like sound event detection ---------------------------------------------------
#: event-based F1: onset collar, and offset collar max(this, OFFSET_SHARE x the event's length)
T_COLLAR = 0.2
OFFSET_SHARE = 0.2
#: segment-based F1 resolution (seconds)
SEGMENT_RESOLUTION = 0.1


def _event_list(events: Sequence[tuple[str, float, float, str]]):
    import dcase_util

    return dcase_util.containers.MetaDataContainer(
        [{"filename": f, "onset": float(a), "offset": float(b), "event_label": lab}
         for f, a, b, lab in events]
    )


class SedScorer:
    """Event- and segment-based counts, clip by clip, with ``sed_eval`` (the DCASE tools).

    Event-based: onset collar :data:`T_COLLAR`, offset collar max(T_COLLAR, :data:`OFFSET_SHARE` x
    the reference event's length); segment-based: :data:`SEGMENT_RESOLUTION` s segments. ``add``
    scores one clip and returns its counts; :attr:`counts` keeps them all ([clips, 2, 3]: event /
    segment x TP, FP, FN, i.e. sed_eval's ``Ntp``, ``Nsys - Ntp``, ``Nref - Ntp``).
    """

    def __init__(self, labels: Sequence[str]) -> None:
        import sed_eval

        self.event = sed_eval.sound_event.EventBasedMetrics(
            event_label_list=list(labels), t_collar=T_COLLAR, percentage_of_length=OFFSET_SHARE,
            evaluate_onset=True, evaluate_offset=True)
        self.segment = sed_eval.sound_event.SegmentBasedMetrics(
            event_label_list=list(labels), time_resolution=SEGMENT_RESOLUTION)
        self._before = np.zeros((2, 3))
        self.rows: list[np.ndarray] = []

    def _totals(self) -> np.ndarray:
        out = np.zeros((2, 3))
        for i, m in enumerate((self.event, self.segment)):
            o = m.overall
            out[i] = (o["Ntp"], o["Nsys"] - o["Ntp"], o["Nref"] - o["Ntp"])
        return out

    def add(self, reference: Sequence[tuple[str, float, float, str]],
            estimated: Sequence[tuple[str, float, float, str]]) -> np.ndarray:
        """Score one clip: ``(clip, onset, offset, label)`` tuples; returns its [2, 3] counts."""
        ref, est = _event_list(reference), _event_list(estimated)
        self.event.evaluate(reference_event_list=ref, estimated_event_list=est)
        self.segment.evaluate(reference_event_list=ref, estimated_event_list=est)
        now = self._totals()
        row, self._before = now - self._before, now
        self.rows.append(row)
        return row

    @property
    def counts(self) -> np.ndarray:
        return np.asarray(self.rows).reshape(-1, 2, 3)

    def f_measures(self) -> dict[str, float]:
        """sed_eval's own overall F1 (event-based, segment-based)."""
        return {"event": float(self.event.results_overall_metrics()["f_measure"]["f_measure"]),
                "segment": float(self.segment.results_overall_metrics()["f_measure"]["f_measure"])}


def f1(tp: float, fp: float, fn: float) -> float:
    """Micro F1 = 2 TP / (2 TP + FP + FN) (0 when there is nothing to score)."""
    d = 2 * tp + fp + fn
    return 2 * tp / d if d > 0 else 0.0


def f1_ci95(counts: np.ndarray, n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95 % percentile-bootstrap interval of micro F1 over clips: ``counts`` [clips, 3] (TP, FP, FN)."""
    c = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    if len(c) < 2:
        v = f1(*c.sum(0)) if len(c) else float("nan")
        return [v, v]
    rng = np.random.default_rng(seed)
    s = c[rng.integers(0, len(c), size=(n_boot, len(c)))].sum(1)  # [n_boot, 3]
    d = 2 * s[:, 0] + s[:, 1] + s[:, 2]
    f = np.where(d > 0, 2 * s[:, 0] / np.maximum(d, 1e-12), 0.0)
    lo, hi = np.quantile(f, [0.025, 0.975])
    return [float(lo), float(hi)]


class TimeSpans:
    """``activity()`` and ``segments()`` for an explanation (mixed into ``Explanation`` and
    ``StreamedExplanation``): subclasses give ``activity()``, ``frame_seconds``, ``duration``, ``method``."""

    method: str

    def activity(self) -> np.ndarray:  # pragma: no cover - implemented by the explanation classes
        raise NotImplementedError

    @property
    def frame_seconds(self) -> float:  # pragma: no cover
        raise NotImplementedError

    @property
    def duration(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def activity_times(self) -> np.ndarray:
        """Time (seconds) of each value of :meth:`activity` (STFT frame centres)."""
        return np.arange(len(self.activity())) * self.frame_seconds

    def segments(self, threshold: float | None = None, *, min_gap: float | None = None,
                 min_duration: float = MIN_DURATION) -> list[Segment]:
        """Where the explanation is active (:func:`segments` of :meth:`activity`); the threshold and
        gap default to those chosen for the method (:data:`DECODING`)."""
        thr, gap = decoding_for(self.method)
        return segments(self.activity(), self.frame_seconds, thr if threshold is None else threshold,
                        min_gap=gap if min_gap is None else min_gap, min_duration=min_duration,
                        duration=self.duration)
