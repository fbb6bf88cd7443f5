"""The explain engine: clips of any length x prompts -> stitched masks and similarities.

Used by the public API (:mod:`lmaczs_cli.api`) and through it by ``lmaczs
explain`` / ``lmaczs baseline``: the method is whatever
:class:`~lmaczs_cli.explainers.base.Explainer` is passed in. Windows of many
clips are batched together; each window is encoded once, its hidden maps are
reused for every prompt, and ``score=False`` skips the masked-similarity pass.

A model that sees a long clip *whole* (``model.fuses_long_clips``: LAION feature fusion,
:mod:`lmaczs_cli.models.fusion`) gets the same window-by-window masks, but a clip longer than one
window is scored as the model sees it: the similarity ``s`` is that of ``model.encode_fused`` of
the whole clip's magnitude (shrunk whole clip + crops at the recorded positions, ``ClipResult.fusion``)
and the masked similarity ``s~`` that of ``encode_fused`` of the whole masked clip (the stitched mask
times the whole magnitude); top-k prompts are chosen by the fused similarities too.

A *clip record* is a dict with ``path`` (a name), ``wave`` (mono [N] at the
model's rate), ``orig_sample_rate`` and ``orig_num_samples`` (the source's own
rate and length, for the listenable output).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lmaczs_cli.audio import resample
from lmaczs_cli.explainers.base import Explainer
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.runtime import autocast
from lmaczs_cli.windows import ClipWindow, split_clip, stitch_masks


@dataclass
class PairResult:
    """The explanation of one (clip, prompt) pair on the clip's own STFT grid."""

    prompt_index: int
    mask: torch.Tensor  # [F, T_clip] in [0, 1]
    similarity: float
    masked_similarity: float | None


@dataclass
class ClipResult:
    """All explained prompts of one clip, with what is needed to resynthesise audio."""

    record: dict
    magnitude: torch.Tensor  # [F, T_clip] at the model rate
    phase: torch.Tensor
    similarities: torch.Tensor  # [P_all] clip-level similarity to every prompt
    pairs: list[PairResult] = field(default_factory=list)
    #: samples the clip's STFT covers at the model rate (the clip, zero-padded to one FFT if shorter)
    n_stft: int = 0
    #: whether the clip looks like audio the model knows (most of its windows do); None: unknown
    in_domain: bool | None = None
    #: a fused model's view of a clip longer than one window (crop rule and positions); None: per window
    fusion: dict | None = None


class ExplainEngine:
    """Compute masks for clips x prompts with one explainer, windows batched across clips."""

    def __init__(self, model: ZeroShotModel, explainer: Explainer, text: torch.Tensor, *,
                 batch_size: int = 8, score: bool = True, precision: str = "fp32") -> None:
        self.model = model
        self.explainer = explainer
        self.text = text  # [P_all, D]
        self.batch_size = batch_size
        self.score = score
        self.precision = precision

    def _ctx(self):
        return autocast(self.model.device, self.precision)

    @torch.no_grad()
    def _encode(self, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Encoded]:
        with self._ctx():
            mag, phase = self.model.spectrogram(waves)
            enc = self.model.encode(mag)
        return mag, phase, enc

    def run(self, records: list[dict], choose: Callable[[torch.Tensor], list[int]]) -> list[ClipResult]:
        """Explain ``records``; ``choose(similarities [P_all]) -> prompt indices`` per clip."""
        model, dev = self.model, self.model.device
        clip_windows: list[list[ClipWindow]] = [split_clip(r["wave"].to(dev), model) for r in records]
        flat = [w for wins in clip_windows for w in wins]
        waves_c = [_at_least_one_fft(r["wave"].to(dev), model.stft_config.n_fft) for r in records]
        # a clip that is its own single window (a model-length clip) has that window's spectrogram:
        # computed once (not under mixed precision, which may change it)
        own, first = set(), 0
        for ci, wins in enumerate(clip_windows):
            if (len(wins) == 1 and self.precision == "fp32" and wins[0].wave.shape == waves_c[ci].shape
                    and torch.equal(wins[0].wave, waves_c[ci])):
                own.add(first)
            first += len(wins)
        mag_w, enc_w, phase_w = self._encode_windows_keeping(flat, own)
        emb_w, hid_w = enc_w.embedding, enc_w.hidden
        sims_w = emb_w @ self.text.float().T  # [W, P_all]
        known = model.domain_check(emb_w, enc_w, mag_w)  # [W] or None
        results, pairs = [], []
        whole: dict[int, torch.Tensor] = {}  # clip -> the magnitude its fused view is computed from
        offset = 0
        for ci, rec in enumerate(records):
            idx = list(range(offset, offset + len(clip_windows[ci])))
            offset += len(idx)
            clip_sims = sims_w[idx].mean(0)
            fusion = None
            if getattr(model, "fuses_long_clips", False) and len(idx) > 1:
                whole[ci], clip_sims = self._fused_similarities(waves_c[ci])
                fusion = model.fusion_record(int(waves_c[ci].shape[-1]))
            wave = waves_c[ci]
            if idx[0] in phase_w:
                mag_c, ph_c = _own_window(mag_w, phase_w, idx[0], copy=len(own) < len(flat))
            else:
                mag_c, ph_c = (t[0] for t in model.spectrogram(wave[None]))
            inside = None if known is None else bool(known[idx].float().mean() >= 0.5)
            results.append(ClipResult(rec, mag_c, ph_c, clip_sims.cpu(), n_stft=int(wave.shape[-1]),
                                      in_domain=inside, fusion=fusion))
            pairs += [(ci, int(p), idx) for p in choose(clip_sims)]
        flat_pairs = [(p, w) for _, p, idx in pairs for w in idx]
        fused_w = {w for ci, _, idx in pairs if ci in whole for w in idx}  # s~ comes from the fused view
        masks_w, msims_w = self._pair_masks(flat_pairs, mag_w, emb_w, hid_w, unscored=fused_w)
        pos = 0
        for ci, p, idx in pairs:
            m = masks_w[pos : pos + len(idx)]
            ms = msims_w[pos : pos + len(idx)] if msims_w is not None else None
            pos += len(idx)
            mask = stitch_masks(m, clip_windows[ci], results[ci].n_stft, model.stft_config.hop_length)
            s, s_masked = float(sims_w[idx, p].mean()), (float(ms.mean()) if ms is not None else None)
            if ci in whole:  # the whole clip as the model sees it: s and s~ of the fused view
                s = float(results[ci].similarities[p])
                if self.score:
                    s_masked = float(self._fused_similarities(None, mask.clamp(0, 1) * whole[ci], p)[1])
            results[ci].pairs.append(PairResult(p, mask.clamp(0, 1), s, s_masked))
        return results

    @torch.no_grad()
    def _fused_similarities(self, wave: torch.Tensor | None, magnitude: torch.Tensor | None = None,
                            prompt: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A fused model's whole-clip magnitude [F, T] (of ``wave``, through the model's own input
        policy, or ``magnitude`` as given) and its fused similarities [P_all] (or to ``prompt``)."""
        model = self.model
        with self._ctx():
            if magnitude is None:
                magnitude = model.spectrogram(model.whole_clip_wave(wave)[None])[0][0]
            emb = model.encode_fused(magnitude[None]).embedding.float()[0]
        text = self.text.float() if prompt is None else self.text[prompt].float()
        return magnitude, text @ emb

    def _encode_windows(self, flat: list[ClipWindow]) -> tuple[torch.Tensor, torch.Tensor, list]:
        """Magnitudes, embeddings and hidden maps of the windows (batched)."""
        mag, enc, _ = self._encode_windows_keeping(flat, set())
        return mag, enc.embedding, enc.hidden

    def _encode_windows_keeping(self, flat: list[ClipWindow], keep_phase: set[int]
                                ) -> tuple[torch.Tensor, Encoded, dict[int, torch.Tensor]]:
        """Magnitudes and encodings of the windows (batched; embeddings in float32, the input
        features where the model hands them on), and the phase of the windows in ``keep_phase``
        (by position)."""
        mags, encs, phases = [], [], {}
        for s in range(0, len(flat), self.batch_size):
            mag, phase, enc = self._encode(torch.stack([w.wave for w in flat[s : s + self.batch_size]]))
            mags.append(mag)
            encs.append(enc)
            phases |= {i: phase[i - s] for i in range(s, s + mag.shape[0]) if i in keep_phase}
        hid = [torch.cat([e.hidden[i] for e in encs]) for i in range(len(encs[0].hidden))]
        feats = None if any(e.features is None for e in encs) else torch.cat([e.features for e in encs])
        emb = torch.cat([e.embedding.float() for e in encs])
        return torch.cat(mags), Encoded(emb, hid, features=feats), phases

    def _pair_masks(self, flat_pairs, mag_w, emb_w, hid_w, unscored: frozenset[int] | set[int] = frozenset()):
        """Masks of the (prompt, window) pairs and, when scoring, their masked similarities (NaN for
        the windows in ``unscored``, whose clip is scored another way: no masked encode for them)."""
        masks, msims = [], []
        for s in range(0, len(flat_pairs), self.batch_size):
            chunk = flat_pairs[s : s + self.batch_size]
            rows = _rows([w for _, w in chunk], mag_w.device)
            pi = torch.tensor([p for p, _ in chunk], device=mag_w.device)
            mag, text = mag_w[rows], self.text[pi]
            enc = Encoded(emb_w[rows], [h[rows] for h in hid_w])
            with self._ctx():
                m = self.explainer.masks(self.model, mag, text, encoded=enc)
            masks.append(m)
            if self.score:
                msims.append(self._masked_similarities(m, mag, text, [w not in unscored for _, w in chunk]))
        return torch.cat(masks), (torch.cat(msims) if self.score else None)

    @torch.no_grad()
    def _masked_similarities(self, m: torch.Tensor, mag: torch.Tensor, text: torch.Tensor,
                             keep: list[bool]) -> torch.Tensor:
        """s~ of a chunk's pairs: one encode of the kept pairs' masked magnitudes (NaN for the others)."""
        if all(keep):  # the usual case: no copies picking the kept rows
            with self._ctx():
                e = self.model.encode(m * mag).embedding.float()
            return (e * text.float()).sum(-1)
        sims = torch.full((len(keep),), float("nan"), device=mag.device)
        if any(keep):
            k = torch.tensor(keep, device=mag.device)
            with self._ctx():
                e = self.model.encode(m[k] * mag[k]).embedding.float()
            sims[k] = (e * text[k].float()).sum(-1)
        return sims


def _own_window(mag_w: torch.Tensor, phase_w: dict[int, torch.Tensor], w: int, copy: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitude and phase of window ``w``, a clip's whole spectrogram: views when every window of
    the batch is a clip's own (nothing else is kept alive), else copies (a view would keep the long
    clips' windows alive too)."""
    if copy:
        return mag_w[w].clone(), phase_w[w].clone()
    return mag_w[w], phase_w[w]


def _rows(windows: list[int], device: torch.device) -> slice | torch.Tensor:
    """An index picking ``windows`` from a batch: a slice (views, no copies) when they are
    consecutive, as they are for one prompt per clip."""
    if windows == list(range(windows[0], windows[0] + len(windows))):
        return slice(windows[0], windows[0] + len(windows))
    return torch.tensor(windows, device=device)


def _at_least_one_fft(wave: torch.Tensor, n_fft: int) -> torch.Tensor:
    """The clip, zero-padded at the end to ``n_fft`` samples when shorter (a centred STFT needs it)."""
    n = int(wave.shape[-1])
    return wave if n >= n_fft else torch.nn.functional.pad(wave, (0, n_fft - n))


def resynthesise(model: ZeroShotModel, result: ClipResult, mask: torch.Tensor) -> torch.Tensor:
    """Masked audio at the clip's original rate and length (phase of the original)."""
    rec = result.record
    n_model = result.n_stft or int(rec["wave"].shape[-1])
    wave = model.inverse((mask * result.magnitude)[None], result.phase[None], n_model)[0]
    wave = resample(wave, model.sample_rate, int(rec["orig_sample_rate"]))
    n = int(rec["orig_num_samples"])
    if wave.shape[-1] < n:
        wave = torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))
    return wave[:n]
