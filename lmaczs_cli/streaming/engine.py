"""Explain one long clip with memory bounded by a few model windows, whatever its length.

The clip is decoded from disk in blocks and resampled to the model's rate
(:mod:`lmaczs_cli.streaming.source`); windows are taken in batches, encoded, masked
for each chosen prompt (the same :class:`~lmaczs_cli.explaining.ExplainEngine` calls
as the in-memory path) and their masks stitched as soon as no later window overlaps
a frame; those frames' STFT is computed from the samples around them, masked,
overlap-added and written to the WAV files at the clip's own rate; ``mask.npy`` grows
frame by frame and the map PNG is drawn from per-column summaries (max of the
magnitude, mean of the mask). Outputs equal the in-memory path's within float32
rounding (see tests/test_streaming.py).

With ``top_k`` the clip-level similarities decide which prompts to explain before any
mask, so a first pass encodes every window for its embedding only; the second pass
encodes them again.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmaczs_cli.audio import wav_subtype_for
from lmaczs_cli.data.prompts import Prompt
from lmaczs_cli.errors import AudioError
from lmaczs_cli.events import TimeSpans
from lmaczs_cli.explainers.base import Explainer
from lmaczs_cli.explaining import ExplainEngine
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.outputs import atomic_path
from lmaczs_cli.streaming.sinks import MapColumns, NpySink, WavSink
from lmaczs_cli.streaming.source import ClipInfo, SampleBuffer, clip_info, model_rate_blocks
from lmaczs_cli.streaming.spectral import MaskStitcher, OverlapAdd, frames_stft
from lmaczs_cli.windows import ClipWindow, window_starts

#: clips needing at least this many model windows are streamed by ``lmaczs explain``
#: (small model: 12 windows = 32.5 s; LAION: 65 s). Tests set it low.
STREAM_MIN_WINDOWS = 12


@dataclass
class StreamedExplanation(TimeSpans):
    """What was written for one (clip, prompt): the numbers of a results.csv row and the files, and
    the activity over time (``activity()``, ``segments()``, as :class:`lmaczs_cli.api.Explanation`)."""

    clip: str
    prompt: str
    label: str
    method: str
    rank: int
    similarity: float
    masked_similarity: float | None
    mask_mean: float
    paths: dict[str, Path]
    #: whether the clip looks like audio the model knows (most windows do); None: unknown
    in_domain: bool | None = None
    #: the activity curve (one value per STFT frame), seconds per frame and the clip's length
    activity_values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    seconds_per_frame: float = 0.0
    seconds: float = 0.0

    def activity(self) -> np.ndarray:
        """As :meth:`lmaczs_cli.api.Explanation.activity` (accumulated frame block by frame block)."""
        return self.activity_values

    @property
    def frame_seconds(self) -> float:
        return self.seconds_per_frame

    @property
    def duration(self) -> float:
        return self.seconds

    @property
    def faithful(self) -> bool | None:
        """As :attr:`lmaczs_cli.api.Explanation.faithful`."""
        from lmaczs_cli.provenance import faithful

        f = faithful(self.similarity, self.masked_similarity)
        return None if f is None else bool(f)


def streamable(model: ZeroShotModel) -> bool:
    """True when the model uses the shared STFT (the streaming path recomputes it in blocks)."""
    cls = type(model)
    return cls.spectrogram is ZeroShotModel.spectrogram and cls.inverse is ZeroShotModel.inverse


def clip_windows(path: Path | str, model: ZeroShotModel) -> int | None:
    """How many model windows the clip at ``path`` needs (header only), None if unreadable."""
    try:
        info = clip_info(path, model.sample_rate)
    except AudioError:
        return None
    return len(window_starts(info.num_samples, model.window_samples, model.stft_config.hop_length))


def is_long(path: Path | str, model: ZeroShotModel, min_windows: int | None = None) -> bool:
    """True when ``path`` should be streamed: at least ``min_windows`` (``STREAM_MIN_WINDOWS``) windows.

    Never for a model that sees a long clip whole (``fuses_long_clips``): its fused view needs the
    whole clip, so such clips are explained in memory."""
    if getattr(model, "fuses_long_clips", False):
        return False
    n = clip_windows(path, model)
    limit = STREAM_MIN_WINDOWS if min_windows is None else min_windows
    return n is not None and n >= limit and streamable(model)


@dataclass
class _Plan:
    """One clip's windows and STFT grid at the model's rate."""

    info: ClipInfo
    model: ZeroShotModel
    starts: list[int] = field(init=False)
    n_stft: int = field(init=False)  # samples the STFT covers (the clip, zero-padded to one FFT)
    frames: int = field(init=False)

    def __post_init__(self) -> None:
        m, n = self.model, self.info.num_samples
        self.starts = window_starts(n, m.window_samples, m.stft_config.hop_length)
        self.n_stft = max(n, m.stft_config.n_fft)
        self.frames = self.n_stft // m.stft_config.hop_length + 1

    def buffer(self) -> SampleBuffer:
        blocks: Iterator[torch.Tensor] = model_rate_blocks(self.info.path, self.model.sample_rate)
        if self.n_stft > self.info.num_samples:
            blocks = itertools.chain(blocks, [torch.zeros(self.n_stft - self.info.num_samples)])
        return SampleBuffer(blocks, self.n_stft, self.model.device, self.info.path)

    def groups(self, buf: SampleBuffer, size: int) -> Iterator[tuple[list[int], list[ClipWindow], int]]:
        """Batches of (window indices, windows as ``split_clip`` cuts them, next window's start)."""
        n, w = self.info.num_samples, self.model.window_samples
        for g in range(0, len(self.starts), size):
            idx = list(range(g, min(g + size, len(self.starts))))
            wins = []
            for i in idx:
                s = self.starts[i]
                fitted = self.model.fit_window(buf.span(s, min(s + w, n)))
                wins.append(ClipWindow(fitted.wave, s, fitted.valid if n <= w else min(w, n - s)))
            yield idx, wins, (self.starts[idx[-1] + 1] if idx[-1] + 1 < len(self.starts) else n)


class _PairFiles:
    """The files of one explained prompt, filled a block of frames at a time."""

    def __init__(self, stack: contextlib.ExitStack, folder: Path, index: int, plan: _Plan,
                 residual: bool, save_mask: bool) -> None:
        m, info = plan.model, plan.info
        self.folder, self.index = folder, index
        self.paths: dict[str, Path] = {}
        self.wavs: list[tuple[bool, OverlapAdd, WavSink]] = []
        kinds = [("wav", "explanation.wav", False)] + [("residual_wav", "residual.wav", True)] * residual
        subtype = wav_subtype_for(info.path)
        for kind, name, inverse in kinds:
            final = folder / name
            tmp = stack.enter_context(atomic_path(final, suffix=".part.wav"))
            sink = WavSink(tmp, final, m.sample_rate, info.orig_sample_rate, info.orig_num_samples, m.device,
                           subtype)
            stack.callback(sink.close)
            self.wavs.append((inverse, OverlapAdd(m.stft_config, plan.n_stft, m.device), sink))
            self.paths[kind] = final
        self.npy: NpySink | None = None
        if save_mask:
            final = folder / "mask.npy"
            tmp = stack.enter_context(atomic_path(final, suffix=".part.npy"))
            self.npy = NpySink(tmp, final, (m.n_freqs, plan.frames))
            stack.callback(self.npy.close)
            self.paths["mask"] = final
        self.columns = MapColumns(m.n_freqs, plan.frames, "mean", device=m.device)
        self.mask_sum = torch.zeros((), dtype=torch.float64, device=m.device)
        self.masked_sims: list[torch.Tensor] = []
        self.kept: list[torch.Tensor] = []  # per frame: sum_f M |X| (the activity's numerator)

    def write(self, mask: torch.Tensor, mag: torch.Tensor, phase: torch.Tensor) -> None:
        """Add the next final frames of the mask [F, n] with the clip's STFT of those frames."""
        for inverse, ola, sink in self.wavs:
            sink.write(ola.push(torch.polar((1 - mask if inverse else mask) * mag, phase)))
        if self.npy is not None:
            self.npy.write(mask)
        self.columns.add(mask)
        self.mask_sum += mask.double().sum()
        self.kept.append((mask.double() * mag.double()).sum(0).cpu())

    def finish(self) -> None:
        for _, ola, sink in self.wavs:
            sink.write(ola.finish())
            sink.finish()
        if self.npy is not None:
            self.npy.finish()


def explain_clip_streaming(
    explainer: Explainer,
    path: Path | str,
    prompts: Sequence[Prompt],
    folder_of: Callable[[Prompt], Path],
    *,
    top_k: int | None = None,
    batch_size: int = 8,
    score: bool = True,
    precision: str = "fp32",
    residual: bool = False,
    save_mask: bool = False,
    maps: bool = True,
) -> list[StreamedExplanation]:
    """Explain the clip at ``path`` for each prompt (or the ``top_k`` best), writing each pair's
    ``explanation.wav``, ``map.png`` (and ``residual.wav``, ``mask.npy``) into ``folder_of(prompt)``.

    Same files and numbers as :meth:`lmaczs_cli.api.Explanation.save` on the in-memory path,
    with peak memory independent of the clip's length. Raises :class:`AudioError` for a
    file that cannot be decoded (no output is left behind) and ``OSError`` naming the file
    for a write failure (temp files removed).
    """
    model = explainer.model
    plan = _Plan(clip_info(path, model.sample_rate), model)
    text = model.embed_text([p.text for p in prompts])
    engine = ExplainEngine(model, explainer, text, batch_size=batch_size, score=score, precision=precision)
    sims = _similarities(engine, plan) if top_k is not None else None
    if sims is None:
        chosen = list(range(len(prompts)))
    else:
        chosen = sims.mean(0).topk(min(int(top_k), len(prompts))).indices.tolist()
    if not chosen:  # top_k = 0
        return []
    written: list[Path] = []
    try:
        with contextlib.ExitStack() as stack:
            pairs = [_PairFiles(stack, folder_of(prompts[p]), p, plan, residual, save_mask) for p in chosen]
            written += [f for pr in pairs for f in pr.paths.values()]
            sims_main, spec_columns, inside, energy = _stream(engine, plan, pairs)
            sims = sims_main if sims is None else sims
            for pr in pairs:
                pr.finish()
            out = _results(explainer, plan, prompts, pairs, sims, spec_columns, written, inside, maps,
                           energy)
        return out
    except BaseException:
        for f in written:
            f.unlink(missing_ok=True)
        raise


@torch.no_grad()
def _similarities(engine: ExplainEngine, plan: _Plan) -> torch.Tensor:
    """Window-level similarities [W, P] from an encode-only pass (for ``top_k``)."""
    buf, out = plan.buffer(), []
    for _, wins, next_start in plan.groups(buf, engine.batch_size):
        _, emb, _ = engine._encode_windows(wins)
        out.append(emb @ engine.text.float().T)
        buf.drop_before(next_start)
        release_heap()
    return torch.cat(out)


def _stream(engine: ExplainEngine, plan: _Plan,
            pairs: list[_PairFiles]) -> tuple[torch.Tensor, MapColumns, bool | None, np.ndarray]:
    """The streaming pass: window similarities [W, P], the magnitude's map columns, whether
    most windows look like audio the model knows (None: it cannot tell), and each frame's
    summed magnitude (the activity's denominator)."""
    model, cfg = engine.model, engine.model.stft_config
    stitchers = [MaskStitcher(plan.starts, plan.n_stft, cfg.hop_length) for _ in pairs]
    spec_columns = MapColumns(model.n_freqs, plan.frames, "max", device=model.device)
    buf, sims, done, known, energy = plan.buffer(), [], 0, [], []
    for idx, wins, next_start in plan.groups(buf, engine.batch_size):
        mag_w, emb_w, hid_w = engine._encode_windows(wins)
        sims.append(emb_w @ engine.text.float().T)
        inside = model.domain_check(emb_w, Encoded(emb_w, hid_w), mag_w)
        if inside is not None:
            known.append(inside.float())
        flat = [(pr.index, j) for pr in pairs for j in range(len(wins))]
        masks, msims = engine._pair_masks(flat, mag_w, emb_w, hid_w)
        del mag_w, emb_w, hid_w
        blocks = []
        for k, (pr, st) in enumerate(zip(pairs, stitchers, strict=True)):
            part = slice(k * len(wins), (k + 1) * len(wins))
            blocks.append(torch.cat([st.add(i, m) for i, m in zip(idx, masks[part], strict=True)], 1))
            if msims is not None:
                pr.masked_sims.append(msims[part])
        upto = stitchers[0].done
        if upto > done:
            mag, phase = frames_stft(buf, cfg, done, upto)
            spec_columns.add(mag)
            energy.append(mag.double().sum(0).cpu())
            for pr, block in zip(pairs, blocks, strict=True):
                pr.write(block, mag, phase)
            done = upto
        # keep what the next windows and the next frames (reflection at the end included) read
        buf.drop_before(min(next_start, done * cfg.hop_length - cfg.n_fft // 2 - cfg.hop_length))
        release_heap()
    inside = bool(torch.cat(known).mean() >= 0.5) if known else None
    return torch.cat(sims), spec_columns, inside, torch.cat(energy).numpy()


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None


def release_heap() -> None:
    """Hand freed heap memory back to the OS (glibc's ``malloc_trim``).

    Blocks of similar but varying sizes, freed and allocated again for every batch
    of windows, fragment glibc's heap: without this, resident memory creeps up with
    the clip's length (about 7 MB per batch of windows) although no tensor is kept.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _results(explainer: Explainer, plan: _Plan, prompts: Sequence[Prompt], pairs: list[_PairFiles],
             sims: torch.Tensor, spec_columns: MapColumns, written: list[Path],
             in_domain: bool | None, maps: bool = True,
             energy: np.ndarray | None = None) -> list[StreamedExplanation]:
    """Rows in rank order, and each pair's map PNG (with the activity strip)."""
    from lmaczs_cli.events import activity_from_sums
    from lmaczs_cli.render import map_banner, map_title, render_map

    m = plan.model
    clip_sims = sims.mean(0)
    order = sorted(pairs, key=lambda pr: -float(clip_sims[pr.index]))
    spec = spec_columns.result()
    seconds = plan.frames * m.stft_config.hop_length / m.sample_rate
    out = []
    for rank, pr in enumerate(order, start=1):
        p = prompts[pr.index]
        s = float(sims[:, pr.index].mean())
        ms = float(torch.cat(pr.masked_sims).mean()) if pr.masked_sims else None
        png = pr.folder / "map.png" if maps else None
        e = StreamedExplanation(
            clip=plan.info.path, prompt=p.text, label=p.label, method=explainer.name, rank=rank,
            similarity=s, masked_similarity=ms, mask_mean=float(pr.mask_sum) / (m.n_freqs * plan.frames),
            paths={**pr.paths, **({"png": png} if png is not None else {})}, in_domain=in_domain,
            activity_values=activity_from_sums(torch.cat(pr.kept).numpy(), energy)
            if energy is not None else np.zeros(0),
            seconds_per_frame=m.stft_config.hop_length / m.sample_rate,
            seconds=plan.info.orig_num_samples / plan.info.orig_sample_rate,
        )
        if png is not None:
            written.append(png)
            render_map(png, spec, pr.columns.result(), m.sample_rate, m.stft_config.hop_length,
                       map_title(p.text, explainer.name, rank, m.name, s, ms), map_banner(m, in_domain),
                       duration_s=seconds, activity=e.activity(), segments=e.segments())
        out.append(e)
    return out
