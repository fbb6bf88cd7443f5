"""The explain engine: clips of any length x prompts -> stitched masks, similarities, audio.

Shared by ``lmaczs explain`` and ``lmaczs baseline``: the method is whatever
:class:`~lmaczs_cli.explainers.base.Explainer` is passed in. Windows of many
clips are batched together; each window is encoded once, its hidden maps are
reused for every prompt, and ``score=False`` skips the masked-similarity pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from lmaczs_cli.audio import load_audio, resample
from lmaczs_cli.errors import AudioError
from lmaczs_cli.models.base import Encoded, ZeroShotModel
from lmaczs_cli.windows import ClipWindow, split_clip, stitch_masks


class ClipFiles(Dataset):
    """Whole clips at the model rate (decoded and resampled in DataLoader workers)."""

    def __init__(self, paths: Sequence[Path], sample_rate: int) -> None:
        self.paths = list(paths)
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        p = self.paths[i]
        try:
            a = load_audio(p, self.sample_rate)
        except AudioError as e:
            return {"path": str(p), "error": str(e)}
        return {
            "path": str(p), "error": None, "wave": a.wave,
            "orig_sample_rate": a.orig_sample_rate, "orig_num_samples": a.orig_num_samples,
        }


def _as_list(records: list[dict]) -> list[dict]:
    return records


def iter_clips(paths: Sequence[Path], sample_rate: int, clips_per_batch: int,
               num_workers: int) -> Iterator[list[dict]]:
    """Lists of decoded clip records (``error`` set for unusable files)."""
    loader = DataLoader(ClipFiles(paths, sample_rate), batch_size=clips_per_batch,
                        num_workers=num_workers, collate_fn=_as_list)
    yield from loader


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


class ExplainEngine:
    """Compute masks for clips x prompts with one explainer, windows batched across clips."""

    def __init__(self, model: ZeroShotModel, explainer, text: torch.Tensor, *,
                 batch_size: int = 8, score: bool = True, autocast=None) -> None:
        self.model = model
        self.explainer = explainer
        self.text = text  # [P_all, D]
        self.batch_size = batch_size
        self.score = score
        self.autocast = autocast

    def _ctx(self):
        import contextlib

        return self.autocast() if self.autocast else contextlib.nullcontext()

    @torch.no_grad()
    def _encode(self, waves: torch.Tensor) -> tuple[torch.Tensor, Encoded]:
        with self._ctx():
            mag, _ = self.model.spectrogram(waves)
            enc = self.model.encode(mag)
        return mag, enc

    def run(self, records: list[dict], choose: callable) -> list[ClipResult]:
        """Explain the good ``records``; ``choose(similarities [P_all]) -> prompt indices``."""
        model, dev = self.model, self.model.device
        clip_windows: list[list[ClipWindow]] = [split_clip(r["wave"].to(dev), model) for r in records]
        flat = [(ci, w) for ci, wins in enumerate(clip_windows) for w in wins]
        mags, embs, hiddens = [], [], []
        for s in range(0, len(flat), self.batch_size):
            chunk = torch.stack([w.wave for _, w in flat[s : s + self.batch_size]])
            mag, enc = self._encode(chunk)
            mags.append(mag)
            embs.append(enc.embedding.float())
            hiddens.append(enc.hidden)
        mag_w = torch.cat(mags)
        emb_w = torch.cat(embs)
        hid_w = [torch.cat([h[i] for h in hiddens]) for i in range(len(hiddens[0]))]
        sims_w = emb_w @ self.text.float().T  # [W, P_all]
        results, pairs = [], []
        offset = 0
        for ci, rec in enumerate(records):
            k = len(clip_windows[ci])
            idx = list(range(offset, offset + k))
            offset += k
            clip_sims = sims_w[idx].mean(0)
            mag_c, ph_c = model.spectrogram(rec["wave"].to(dev)[None])
            results.append(ClipResult(rec, mag_c[0], ph_c[0], clip_sims.cpu()))
            for p in choose(clip_sims):
                pairs.append((ci, int(p), idx))
        flat_pairs = [(ci, p, w) for ci, p, idx in pairs for w in idx]
        masks_w, msims_w = self._pair_masks(flat_pairs, mag_w, emb_w, hid_w)
        pos = 0
        for ci, p, idx in pairs:
            m = masks_w[pos : pos + len(idx)]
            ms = msims_w[pos : pos + len(idx)] if msims_w is not None else None
            pos += len(idx)
            rec = records[ci]
            mask = stitch_masks(m, clip_windows[ci], int(rec["wave"].shape[-1]),
                                model.stft_config.hop_length)
            results[ci].pairs.append(PairResult(
                p, mask.clamp(0, 1), float(sims_w[idx, p].mean()),
                float(ms.mean()) if ms is not None else None,
            ))
        return results

    def _pair_masks(self, flat_pairs, mag_w, emb_w, hid_w):
        masks, msims = [], []
        for s in range(0, len(flat_pairs), self.batch_size):
            chunk = flat_pairs[s : s + self.batch_size]
            wi = torch.tensor([w for _, _, w in chunk], device=mag_w.device)
            pi = torch.tensor([p for _, p, _ in chunk], device=mag_w.device)
            mag, text = mag_w[wi], self.text[pi]
            enc = Encoded(emb_w[wi], [h[wi] for h in hid_w])
            needs_grad = bool(getattr(self.explainer, "needs_grad", False))
            with torch.set_grad_enabled(needs_grad), self._ctx():
                m = self.explainer.masks(self.model, mag, text, encoded=enc).float()
            masks.append(m.detach())
            if self.score:
                with torch.no_grad(), self._ctx():
                    e = self.model.encode(m * mag).embedding.float()
                msims.append((e * text.float()).sum(-1))
        return torch.cat(masks), (torch.cat(msims) if self.score else None)


def resynthesise(model: ZeroShotModel, result: ClipResult, mask: torch.Tensor) -> torch.Tensor:
    """Masked audio at the clip's original rate and length (phase of the original)."""
    rec = result.record
    n_model = int(rec["wave"].shape[-1])
    wave = model.inverse((mask * result.magnitude)[None], result.phase[None], n_model)[0]
    wave = resample(wave, model.sample_rate, int(rec["orig_sample_rate"]))
    n = int(rec["orig_num_samples"])
    if wave.shape[-1] < n:
        wave = torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))
    return wave[:n]
