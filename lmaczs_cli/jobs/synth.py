"""The synth job: write synthetic scenes with captions and ground-truth masks (``lmaczs synth``)."""

from __future__ import annotations

import json
from pathlib import Path

from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.reporter import Reporter

COLUMNS = ["id", "path", "caption", "label", "events", "n_events", "snr_db", "split", "mask"]


def scene_config(events: str | None, min_events: int, max_events: int):
    """The world's ``SceneConfig`` for the ``--events`` / ``--min-events`` / ``--max-events`` options."""
    from lmaczs_cli.data import synthetic as world

    try:
        keys = world.CLASS_KEYS
        if events:
            chosen = set(world.resolve_classes([e for e in events.split(",") if e.strip()]))
            keys = tuple(k for k in world.CLASS_KEYS if k in chosen)  # order-independent
    except ValueError as e:
        raise UsageError(f"--events: {e}") from None
    if not keys:
        raise UsageError("--events: no event class given")
    if min_events > max_events:
        raise UsageError(f"--min-events {min_events} is larger than --max-events {max_events}")
    if min_events > len(keys):
        raise UsageError(f"--min-events {min_events}: only {len(keys)} event classes chosen")
    return world.SceneConfig(classes=keys, min_events=min_events, max_events=max_events)


def write_scenes(
    out: Path, n: int, seed: int, config, masks: bool = True, reporter: Reporter | None = None,
) -> list[dict]:
    """Generate scenes 0..n-1 of world ``seed`` and write WAVs, masks, manifest (atomically)."""
    from dataclasses import asdict

    from lmaczs_cli.audio import write_wav
    from lmaczs_cli.data import synthetic as world
    from lmaczs_cli.outputs import write_csv_atomic, write_text_atomic

    rep = reporter or Reporter()
    rows: list[dict] = []
    with rep.progress(n, "synth") as advance:
        for i in range(n):
            scene = world.generate_scene(seed, i, config, with_masks=masks)
            sid = f"{i:06d}"
            write_wav(out / "audio" / f"{sid}.wav", scene.wave, world.SAMPLE_RATE, subtype="PCM_16")
            if scene.masks is not None:
                write_npz(out / "masks" / f"{sid}.npz", scene.masks)
            row = {
                "id": sid,
                "path": f"audio/{sid}.wav",
                "caption": scene.caption,
                "label": world.CLASSES[scene.events[0].cls].name,
                "events": json.dumps([e.as_dict() for e in scene.events]),
                "n_events": len(scene.events),
                "snr_db": "" if scene.snr_db is None else round(scene.snr_db, 2),
                "split": world.split_of(i),
                "mask": f"masks/{sid}.npz" if masks else "",
            }
            rows.append(row)
            rep.result({**row, "events": [e.as_dict() for e in scene.events]})
            advance(1)
    write_csv_atomic(out / "manifest.csv", rows, COLUMNS)
    info = {
        "generator": "lmaczs_cli.data.synthetic", "seed": seed, "n": n,
        "config": asdict(config), "sample_rate": world.SAMPLE_RATE,
        "window_seconds": world.WINDOW_SECONDS, "mask_grid": [world.N_FREQS, world.N_FRAMES],
        "stft": {"n_fft": world.N_FFT, "hop_length": world.HOP_LENGTH,
                 "win_length": world.WIN_LENGTH, "window": "hann", "center": True},
        "mask_floor_db": world.MASK_FLOOR_DB,
    }
    write_text_atomic(out / "synth.json", json.dumps(info, indent=2) + "\n")
    return rows


def write_npz(path: Path, arrays: dict) -> None:
    """Write ``arrays`` as a compressed .npz with fixed timestamps (same input, same bytes)."""
    import zipfile

    import numpy as np

    from lmaczs_cli.outputs import atomic_path

    with atomic_path(path, suffix=".part.npz") as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)
