"""The public Python API: load a model and an explainer, explain clips, listen to the result.

    import lmaczs_cli
    model = lmaczs_cli.load_model("small")
    explainer = lmaczs_cli.load_explainer("lmaczs", model)
    for e in lmaczs_cli.explain(explainer, "clip.wav", ["dog barking", "rain"]):
        print(e.prompt, e.similarity, e.masked_similarity)
        e.save("out/" + e.label)          # explanation.wav + map.png, as the CLI writes them
        wave = e.waveform()               # the listenable explanation at the clip's own rate

Clips of any length and sample rate: a file path, or ``(wave, sample_rate)`` with
``wave`` a float array or tensor of shape [N], [channels, N] or [N, channels].
``lmaczs explain`` and ``lmaczs baseline`` run on exactly these functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmaczs_cli.data.prompts import Prompt, check_prompt
from lmaczs_cli.events import TimeSpans
from lmaczs_cli.explainers.base import Explainer, create_explainer
from lmaczs_cli.explaining import ClipResult, ExplainEngine, resynthesise
from lmaczs_cli.models.base import ZeroShotModel
from lmaczs_cli.models.registry import load_model as _load_model
from lmaczs_cli.runtime import DEFAULT_MODEL

if TYPE_CHECKING:
    from lmaczs_cli.streaming import StreamedExplanation

#: a clip: a file path, or (samples, sample_rate)
Audio = str | Path | tuple[Any, int]


def load_model(
    name: str = DEFAULT_MODEL,
    checkpoint: str | Path | None = None,
    *,
    tokenizer_dir: str | Path | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> ZeroShotModel:
    """The zero-shot model ``name`` (see :func:`list_models`), frozen, on ``device``.

    ``checkpoint``: the model's weights file (LAION ``.pt``, ...); ``"random"``
    builds seeded random weights (offline trials: results are meaningless).
    """
    return _load_model(name, checkpoint, tokenizer_dir, device, seed)


def load_explainer(method: str, model: ZeroShotModel, **options: Any) -> Explainer:
    """Explainer ``method`` (see :func:`list_explainers`) for ``model``.

    Options by method: ``lmaczs``: ``decoder`` (checkpoint path; default the one
    bundled with the model), ``mask_domain`` (``stft``/``mel``); ``ig``: ``steps``,
    ``baseline``; ``smoothgrad``: ``samples``, ``noise``. Unknown options are refused.
    """
    return create_explainer(method, model, **options)


@dataclass
class Explanation(TimeSpans):
    """Why the model matched one clip to one prompt: a mask, similarities, listenable audio.

    ``mask`` [F, T] in [0, 1] covers the whole clip on the model's STFT grid (its
    sample rate and hop); ``similarity`` is s (cosine of clip and prompt), and
    ``masked_similarity`` s~ of the masked clip (None when not scored);
    ``rank`` orders the explained prompts of the clip by s (1 = best);
    ``sample_rate`` and ``num_samples`` are the clip's own. *When*: :meth:`activity` (the share of
    each frame's magnitude the mask keeps, every ``frame_seconds``) and :meth:`segments` (onset,
    offset, peak time and strength of each span where it is active; :mod:`lmaczs_cli.events`).
    """

    clip: str
    prompt: str
    label: str
    method: str
    rank: int
    similarity: float
    masked_similarity: float | None
    mask: torch.Tensor
    sample_rate: int
    num_samples: int
    model_name: str
    _result: ClipResult = field(repr=False)
    _model: ZeroShotModel = field(repr=False)
    _activity: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def fusion(self) -> dict | None:
        """How a fused model saw this clip when it is longer than one window (``similarity`` and
        ``masked_similarity`` are then the fused view's: crop rule, crop starts in frames); None:
        scored window by window (the mean over windows), or the clip fits one window."""
        return self._result.fusion

    @property
    def mask_mean(self) -> float:
        """Mean of the mask: the share of the clip's time-frequency bins kept."""
        return float(self.mask.mean())

    @property
    def faithful(self) -> bool | None:
        """True when the masked clip keeps the similarity (``|s − s~|`` within
        :data:`lmaczs_cli.provenance.FAITHFUL_TOL`); None when s~ was not computed."""
        from lmaczs_cli.provenance import faithful

        f = faithful(self.similarity, self.masked_similarity)
        return None if f is None else bool(f)

    @property
    def in_domain(self) -> bool | None:
        """Whether the clip looks like audio the model knows (None: the model cannot tell)."""
        return self._result.in_domain

    def activity(self) -> np.ndarray:
        """The explanation's evidence over time [T]: per STFT frame, the share of the clip's magnitude
        the mask keeps (:func:`lmaczs_cli.events.activity`), in [0, 1]."""
        from lmaczs_cli.events import activity

        if self._activity is None:  # the map, the row and events.csv all ask: computed once
            self._activity = activity(self.mask.detach().float().cpu().numpy(),
                                      self._result.magnitude.detach().float().cpu().numpy())
            self._activity.flags.writeable = False  # shared by every caller
        return self._activity

    @property
    def frame_seconds(self) -> float:
        """Seconds between two values of :meth:`activity` (the model's STFT hop)."""
        return self._model.stft_config.hop_length / self._model.sample_rate

    @property
    def duration(self) -> float:
        """The clip's length in seconds."""
        return self.num_samples / self.sample_rate

    def waveform(self, residual: bool = False) -> np.ndarray:
        """The listenable explanation [num_samples] (float32, at ``sample_rate``).

        ``residual=True``: what the mask removed instead.
        """
        m = 1 - self.mask if residual else self.mask
        return resynthesise(self._model, self._result, m).detach().float().cpu().numpy()

    def title(self) -> str:
        """The map's title: prompt, method, rank, model, s and s~."""
        from lmaczs_cli.render import map_title

        return map_title(self.prompt, self.method, self.rank, self.model_name, self.similarity,
                         self.masked_similarity)

    def banner(self) -> str | None:
        """The warning drawn across the map, if any (random weights, audio the model does not know)."""
        from lmaczs_cli.render import map_banner

        return map_banner(self._model, self.in_domain)

    def plot(self):
        """The explanation map (spectrogram, mask, masked spectrogram) as a matplotlib Figure."""
        from lmaczs_cli.render import map_figure

        return map_figure(*self._map_args(), banner=self.banner())

    def save(self, folder: str | Path, *, residual: bool = False, save_mask: bool = False,
             map_png: bool = True) -> dict[str, Path]:
        """Write ``explanation.wav`` and ``map.png`` (unless ``map_png`` is False; and ``residual.wav``,
        ``mask.npy``) into ``folder``.

        Every file is written atomically; returns their paths by kind (``wav``, ``png``,
        ``residual_wav``, ``mask``). WAVs keep the clip's sample format (PCM_16 stays
        PCM_16; float for arrays) and are scaled down if they would exceed full scale.
        """
        from lmaczs_cli.audio import wav_subtype_for, within_full_scale, write_wav
        from lmaczs_cli.outputs import atomic_path
        from lmaczs_cli.render import render_map

        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        sub = wav_subtype_for(self.clip)
        wav = write_wav(d / "explanation.wav", within_full_scale(self.waveform()), self.sample_rate, sub)
        paths = {"wav": wav}
        if residual:
            paths["residual_wav"] = write_wav(d / "residual.wav", within_full_scale(self.waveform(True)),
                                              self.sample_rate, sub)
        if save_mask:
            with atomic_path(d / "mask.npy", suffix=".part.npy") as tmp:
                np.save(tmp, self.mask.detach().cpu().numpy().astype(np.float32))
            paths["mask"] = d / "mask.npy"
        if map_png:
            paths["png"] = render_map(d / "map.png", *self._map_args(), banner=self.banner(),
                                      activity=self.activity(), segments=self.segments())
        return paths

    def _map_args(self) -> tuple:
        m = self._model
        mag = self._result.magnitude.detach().cpu().numpy()
        return (mag, self.mask.detach().cpu().numpy(), m.sample_rate, m.stft_config.hop_length, self.title())


@dataclass
class ClipExplanations:
    """The explanations of one clip, or the reason it could not be explained."""

    clip: str
    explanations: list[Explanation]
    error: str | None = None


def explain(
    explainer: Explainer,
    audio: Audio,
    prompts: Sequence[str | Prompt],
    *,
    top_k: int | None = None,
    batch_size: int = 8,
    score: bool = True,
    precision: str = "fp32",
) -> list[Explanation]:
    """Explain one clip for each prompt (or the ``top_k`` prompts the model ranks highest).

    Returns the explanations in prompt order. A clip that cannot be used raises
    :class:`lmaczs_cli.errors.AudioError` (a file) or ``ValueError`` (an array).
    The whole clip, its spectrogram and every window stay in memory: explain
    recordings of many minutes with :func:`explain_to_folder` (memory bounded).
    """
    from lmaczs_cli.errors import AudioError

    plist = _prompts(prompts)
    (res,) = explain_many(explainer, [audio], plist, top_k=top_k, batch_size=batch_size, score=score,
                          precision=precision)
    if res.error is not None:
        raise AudioError(res.clip, res.error.removeprefix(f"{res.clip}: "))
    texts = [p.text for p in plist]
    return sorted(res.explanations, key=lambda e: texts.index(e.prompt))


def explain_to_folder(
    explainer: Explainer,
    path: str | Path,
    prompts: Sequence[str | Prompt],
    folder: str | Path,
    *,
    top_k: int | None = None,
    batch_size: int = 8,
    score: bool = True,
    precision: str = "fp32",
    residual: bool = False,
    save_mask: bool = False,
) -> list[StreamedExplanation]:
    """Explain an audio file of any length straight to files, with memory bounded by a few windows.

    Writes what :meth:`Explanation.save` writes into ``folder/<prompt slug>/`` and returns
    one record per explained prompt, best first (``rank``, ``similarity``,
    ``masked_similarity``, ``mask_mean``, ``paths``). For long recordings: the file is
    decoded and explained window by window (as ``lmaczs explain`` does for long clips).
    """
    from lmaczs_cli.outputs import safe_name
    from lmaczs_cli.streaming import explain_clip_streaming, streamable

    model = _model_of(explainer)
    if getattr(model, "fuses_long_clips", False):
        raise ValueError(f"model {model.name!r} sees a long clip whole (fusion): use explain() and "
                         "Explanation.save")
    if not streamable(model):
        raise ValueError(f"model {model.name!r} has its own spectrogram: use explain() and Explanation.save")
    return explain_clip_streaming(
        explainer, path, _prompts(prompts), lambda p: Path(folder) / safe_name(p.text, 60), top_k=top_k,
        batch_size=batch_size, score=score, precision=precision, residual=residual, save_mask=save_mask)


def explain_many(
    explainer: Explainer,
    audios: Iterable[Audio],
    prompts: Sequence[str | Prompt],
    *,
    top_k: int | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    score: bool = True,
    precision: str = "fp32",
) -> Iterator[ClipExplanations]:
    """Explain many clips, yielding one :class:`ClipExplanations` per clip in input order.

    Files are decoded in ``num_workers`` processes; windows of several clips
    share batches of ``batch_size``. A clip that cannot be used yields its
    error (one line naming it) and the others go on.
    """
    model = _model_of(explainer)
    plist = _prompts(prompts)
    text = model.embed_text([p.text for p in plist])
    engine = ExplainEngine(model, explainer, text, batch_size=batch_size, score=score, precision=precision)
    k = len(plist) if top_k is None else min(int(top_k), len(plist))

    def choose(sims: torch.Tensor) -> list[int]:
        return sims.topk(k).indices.tolist() if top_k is not None else list(range(len(plist)))

    for records in _record_batches(audios, model, max(1, batch_size // 2), num_workers):
        good = [r for r in records if r["error"] is None]
        done = {id(res.record): res for res in engine.run(good, choose)} if good else {}
        for r in records:
            error = r["error"] if r["error"] is not None else _not_finite(done[id(r)])
            if error is not None:
                yield ClipExplanations(r["path"], [], error)
            else:
                yield ClipExplanations(r["path"], _explanations(done[id(r)], plist, explainer, model))


def _not_finite(res: ClipResult) -> str | None:
    """The clip's error when anything computed for it is NaN or Inf (then nothing is written)."""
    checks = [("spectrogram", _finite(res.magnitude)), ("similarity", _finite(res.similarities))]
    checks += [("mask", _finite(pr.mask)) for pr in res.pairs]
    checks += [("masked similarity", math.isfinite(pr.masked_similarity)) for pr in res.pairs
               if pr.masked_similarity is not None]
    bad = list(dict.fromkeys(name for name, ok in checks if not ok))
    if not bad:
        return None
    return (f"{res.record['path']}: the model computed NaN or Inf ({', '.join(bad)}) for this clip; "
            "nothing written")


def _finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite: its extremes are (a NaN makes both NaN). One pass
    without a mask tensor: a tenth of the time of ``torch.isfinite(t).all()`` on a spectrogram."""
    if t.numel() == 0:
        return True
    lo, hi = torch.stack(torch.aminmax(t.detach())).tolist()  # one device sync
    return math.isfinite(lo) and math.isfinite(hi)


def _explanations(res: ClipResult, plist: list[Prompt], explainer: Explainer,
                  model: ZeroShotModel) -> list[Explanation]:
    rec = res.record
    order = sorted(res.pairs, key=lambda pr: -float(res.similarities[pr.prompt_index]))
    return [
        Explanation(
            clip=rec["path"], prompt=plist[pr.prompt_index].text, label=plist[pr.prompt_index].label,
            method=explainer.name, rank=rank, similarity=pr.similarity,
            masked_similarity=pr.masked_similarity, mask=pr.mask, sample_rate=int(rec["orig_sample_rate"]),
            num_samples=int(rec["orig_num_samples"]), model_name=model.name, _result=res, _model=model,
        )
        for rank, pr in enumerate(order, start=1)
    ]


def _model_of(explainer: Explainer) -> ZeroShotModel:
    if not isinstance(explainer, Explainer):
        raise ValueError(f"expected an Explainer (from load_explainer), got {type(explainer).__name__}")
    if explainer.model is None:
        raise ValueError("this explainer has no model: create it with load_explainer(method, model)")
    return explainer.model


def _prompts(prompts: Sequence[str | Prompt]) -> list[Prompt]:
    if isinstance(prompts, (str, Prompt)):
        prompts = [prompts]
    out = [p if isinstance(p, Prompt) else Prompt(check_prompt(p, "prompt"), check_prompt(p, "prompt"))
           for p in prompts]
    if not out:
        raise ValueError("no prompts: give at least one prompt text")
    return list(dict.fromkeys(out))


def _record_batches(audios: Iterable[Audio], model: ZeroShotModel, per_batch: int,
                    num_workers: int) -> Iterator[list[dict]]:
    """Lists of clip records: files decoded in DataLoader workers, arrays converted here."""
    from lmaczs_cli.data.loading import whole_clip_records

    audios = list(audios)
    if all(isinstance(a, (str, Path)) for a in audios):
        yield from whole_clip_records([Path(a) for a in audios], model.sample_rate, per_batch, num_workers)
        return
    for i, a in enumerate(audios):
        if isinstance(a, (str, Path)):
            yield from whole_clip_records([Path(a)], model.sample_rate, 1, 0)
        else:
            yield [array_record(a, model.sample_rate, f"<array {i}>")]


def array_record(audio: tuple[Any, int], sample_rate: int, name: str = "<array>") -> dict:
    """A clip record from ``(samples, rate)``: mono float at ``sample_rate`` (ValueError if unusable)."""
    from lmaczs_cli.audio import resample

    wave, sr = _check_array(audio)
    rec = resample(torch.from_numpy(wave), sr, sample_rate).float().contiguous()
    return {"path": name, "wave": rec, "valid": int(rec.shape[0]), "orig_sample_rate": sr,
            "orig_num_samples": int(wave.shape[0]), "error": None}


def _check_array(audio: Any) -> tuple[np.ndarray, int]:
    expect = "expected (samples, sample_rate) with float samples of shape [N], [channels, N] or [N, channels]"
    if not (isinstance(audio, tuple) and len(audio) == 2):
        raise ValueError(f"audio: {expect}, or a file path; got {type(audio).__name__}")
    wave, sr = audio
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or int(sr) <= 0:
        raise ValueError(f"sample_rate: expected a positive int (e.g. 44100), got {sr!r}")
    arr = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"samples: expected a floating-point array in [-1, 1], got dtype {arr.dtype}")
    if arr.ndim == 2:
        ch_axis = int(np.argmin(arr.shape))
        if arr.shape[ch_axis] > 8 or arr.shape[ch_axis] == arr.shape[1 - ch_axis]:
            raise ValueError(f"samples: {expect}; got shape {arr.shape}")
        arr = arr.mean(axis=ch_axis)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"samples: {expect}; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("samples: contain NaN or Inf")
    return np.ascontiguousarray(arr, dtype=np.float32), int(sr)
