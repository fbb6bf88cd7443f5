"""Does a clip look like the synthetic world the bundled small model was trained on?

The small model knows ten synthetic event classes and nothing else: on real recordings it
is at chance, yet confident. Its own audio embeddings tell: the statistics (mean and a
slightly shrunk inverse covariance) of its embeddings of 2000 training scenes are
shipped next to its weights (``domain.npz``), and a clip is *in its world* when the
Mahalanobis distance of its embedding stays below the 99.5th percentile of those
scenes'. Measured for the bundled weights: 98.7 % of 300 held-out synthetic scenes in, 73 % of
414 real ESC-50 clips out (68 % of esc50-mini's 50);
a run warns when at least ``provenance.DOMAIN_WARN_SHARE`` of its clips are out.

Regenerate after retraining the model::

    python -m lmaczs_cli.models.small_domain --write
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch

N_SCENES, SHRINK, QUANTILE = 2000, 1e-3, 0.995


def domain_file(weights: Path) -> Path:
    """Where the statistics of the weights file ``weights`` live."""
    return weights.with_name("domain.npz")


def weights_digest(model: torch.nn.Module) -> str:
    """A digest of the audio tower's weights (stale statistics are refused)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        if not k.startswith("text_proj"):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def fit(model, n: int = N_SCENES, batch: int = 64) -> dict[str, np.ndarray]:
    """Statistics of the model's embeddings of ``n`` training scenes of world seed 0."""
    from lmaczs_cli.data.synthetic import SyntheticDataset

    ds = SyntheticDataset(n, 0, "train")
    embs = []
    with torch.no_grad():
        for s in range(0, n, batch):
            idx = range(s, min(n, s + batch))
            waves = torch.stack([model.fit_window(ds[i].wave.float()).wave for i in idx])
            embs.append(model.encode(model.spectrogram(waves.to(model.device))[0]).embedding.double().cpu())
    x = torch.cat(embs)
    mu = x.mean(0)
    cov = (x - mu).T @ (x - mu) / len(x)
    cov = (1 - SHRINK) * cov + SHRINK * torch.eye(cov.shape[0], dtype=cov.dtype) * cov.diagonal().mean()
    prec = torch.linalg.inv(cov)
    d = (((x - mu) @ prec) * (x - mu)).sum(1)
    threshold = np.array(float(torch.quantile(d, QUANTILE)))
    return {"mean": mu.numpy(), "precision": prec.numpy(), "threshold": threshold,
            "digest": np.array(weights_digest(model))}


class DomainCheck:
    """Mahalanobis distance of embeddings to the world's; ``__call__`` says which are inside."""

    def __init__(self, stats: dict[str, np.ndarray]) -> None:
        self.mean = torch.from_numpy(np.asarray(stats["mean"], dtype=np.float64))
        self.precision = torch.from_numpy(np.asarray(stats["precision"], dtype=np.float64))
        self.threshold = float(stats["threshold"])

    def distance(self, embeddings: torch.Tensor) -> torch.Tensor:
        d = embeddings.detach().double().cpu() - self.mean
        return ((d @ self.precision) * d).sum(1)

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.distance(embeddings) <= self.threshold


def load(model, weights: Path) -> DomainCheck | None:
    """The check for ``model`` loaded from ``weights``, if statistics for exactly these weights exist."""
    path = domain_file(weights)
    if not path.is_file():
        return None
    with np.load(path) as z:
        stats = {k: z[k] for k in z.files}
    if str(stats["digest"]) != weights_digest(model):
        return None
    return DomainCheck(stats)


def main(argv: list[str] | None = None) -> int:
    """Write ``domain.npz`` for the bundled weights."""
    from lmaczs_cli.models.small import bundled_weights, load_small

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write assets/small/domain.npz")
    args = ap.parse_args(argv)
    model = load_small()
    stats = fit(model)
    print(f"threshold {float(stats['threshold']):.1f} over {N_SCENES} scenes; digest {stats['digest']}")
    if args.write:
        from lmaczs_cli.outputs import atomic_path

        with atomic_path(domain_file(bundled_weights()), suffix=".part.npz") as tmp, tmp.open("wb") as f:
            np.savez(f, **{k: v.astype(np.float32) if v.dtype == np.float64 else v
                           for k, v in stats.items()})
        print(f"wrote {domain_file(bundled_weights())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
