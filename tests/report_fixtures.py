"""Run folders for the report tests, written the way the jobs write them: clips, pair folders with
explanation/residual WAVs and map PNGs, results.csv, run records, evaluate and sanity-check tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image

from lmaczs_cli.jobs.explain import RESULT_COLUMNS, pair_dir
from lmaczs_cli.outputs import write_csv_atomic

PROVENANCE_COLUMNS = ["run_id", "model", "checkpoint", "decoder", "mask_domain", "faithful"]
HOSTILE = ['</script><script>window.__pwned = 1</script>', '"quoted" & \'single\' <b>bold</b>',
           "<img src=x onerror=\"window.__pwned=2\">", "Glocke 🔔 läutet — ü\u2028line"]


def write_wav(path: Path, seconds: float = 0.5, freq: float = 440.0, rate: int = 16000,
              subtype: str = "FLOAT", fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, subtype=subtype,
             format=fmt)
    return path


def write_png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (30, 100, 3), dtype=np.uint8)).save(path)
    return path


def explanation_row(out: Path, clip: str, prompt: str, method: str = "lmaczs", rank: int = 1,
                    s: float = 0.5, s_masked: float = 0.45, residual: bool = True,
                    **extra: Any) -> dict[str, Any]:
    """Files of one (clip, prompt, method) pair under ``out`` and its results.csv row."""
    d = pair_dir(out, clip, prompt, method)
    row = {"clip": clip, "prompt": prompt, "label": prompt, "method": method, "rank": rank,
           "similarity": s, "masked_similarity": s_masked, "mask_mean": 0.5,
           "wav": str(write_wav(d / "explanation.wav", freq=300 + 50 * rank)),
           "residual_wav": str(write_wav(d / "residual.wav")) if residual else "",
           "png": str(write_png(d / "map.png", rank)), "mask": "", "status": "ok", "error": ""}
    row.update(extra)
    return row


def write_results(out: Path, rows: list[dict[str, Any]], provenance: bool = True) -> Path:
    cols = RESULT_COLUMNS + (PROVENANCE_COLUMNS if provenance else [])
    write_csv_atomic(out / "results.csv", rows, cols)
    return out / "results.csv"


def run_record(run_id: str, command: str = "explain", random_weights: bool = False,
               warnings: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    rec = {"run_id": run_id, "command": command, "argv": ["lmaczs", command, "x.wav"],
           "lmaczs_version": "0.1.0", "started": "2026-11-30T10:15:02Z", "finished": "2026-11-30T10:16:00Z",
           "model": {"name": "small", "checkpoint": "random" if random_weights else "bundled",
                     "checkpoint_sha256": None if random_weights else "ab" * 32,
                     "random_weights": random_weights},
           "methods": {"lmaczs": {"decoder": "/x/decoder.pt", "decoder_sha256": "cd" * 32,
                                  "mask_domain": "stft", "options": {}}, "gradcam": {"options": {}}},
           "seed": 0, "device": "cpu", "precision": "fp32", "warnings": warnings or []}
    rec.update(extra)
    return rec


def write_runs(out: Path, records: list[dict[str, Any]]) -> None:
    """runs.jsonl with every record and run.json with the last, as RunRecord.write does."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (out / "run.json").write_text(json.dumps(records[-1], indent=2), encoding="utf-8")


def write_evaluate(out: Path) -> list[dict[str, Any]]:
    """summary.csv of two methods x two conditions x three metrics, and the scatter plot."""
    rows = []
    for i, (method, cond) in enumerate([("lmaczs", "clean"), ("lmaczs", "white-noise"),
                                        ("gradcam", "clean"), ("gradcam", "white-noise")]):
        for j, metric in enumerate(["AI", "AD", "FF"]):
            mean = 10.0 * i + j + 0.123456
            rows.append({"method": method, "condition": cond, "metric": metric, "mean": mean,
                         "ci_low": mean - 1.5, "ci_high": mean + 2.25, "n": 40})
    write_csv_atomic(out / "summary.csv", rows, ["method", "condition", "metric", "mean", "ci_low",
                                                 "ci_high", "n"])
    write_png(out / "mask_vs_similarity.png", 7)
    return rows


def write_sanity(out: Path) -> dict[str, Any]:
    """summary.json (one method passes, one fails, one NaN), ssim.csv and ssim.png."""
    summary = {"methods": [
        {"method": "lmaczs", "ssim_curve": [1.0, 0.61, 0.12], "ssim_true_vs_wrong_prompt": 0.4,
         "corr_mask_mean_similarity": 0.7, "passed": True, "empty_keeps_s_curve": [0.0, 0.5, 0.92],
         "last_step_by_evidence": {
             "heard": {"n": 4, "mask_mean_ratio": 0.61, "rank_corr": 0.05,
                       "rank_corr_above_chance_ci": [-0.1, 0.12]},
             "hears_nothing": {"n": 46, "mask_mean_ratio": 0.02, "rank_corr": 0.3,
                               "rank_corr_above_chance_ci": [0.1, 0.4]}}},
        {"method": "gradcam", "ssim_curve": [1.0, 0.9, 0.8], "ssim_true_vs_wrong_prompt": float("nan"),
         "corr_mask_mean_similarity": float("nan"), "passed": False}], "pass_ssim": 0.25}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")  # NaN as json.dumps
    rows = [{"method": m["method"], "step": k, "block": "intact" if k == 0 else f"stage{k}", "metric": "ssim",
             "mean": v, "ci_low": v - 0.05, "ci_high": min(1.0, v + 0.05), "n": 12}
            for m in summary["methods"] for k, v in enumerate(m["ssim_curve"])]
    write_csv_atomic(out / "ssim.csv", rows, ["method", "step", "block", "metric", "mean", "ci_low",
                                              "ci_high", "n"])
    write_png(out / "ssim.png", 3)
    write_png(out / "mask_vs_similarity.png", 4)
    return summary
