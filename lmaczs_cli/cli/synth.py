"""``lmaczs synth``: write synthetic scenes with captions and ground-truth masks."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command

HELP = """Generate synthetic sound scenes with ground truth (offline, deterministic).

Writes audio/<id>.wav (16 kHz mono, 5 s, 16-bit), masks/<id>.npz (one bool
[257, 501] array per event class, on the small model's STFT grid),
manifest.csv (path, caption, label = the first event's class, events as JSON
with class/onset/offset in seconds, split 80/10/10 by index) and synth.json.
The same --seed always gives the same files; scene i does not depend on --n.

Examples:

  lmaczs synth --out data/synth --n 1000 --seed 0

  lmaczs synth --out data/pairs --n 200 --events beep,siren,click_train --max-events 2
"""

def register(app: typer.Typer) -> None:
    command(app, "synth", help=HELP, short_help="Synthetic scenes with ground-truth masks.",
            runs_model=False)(synth)


def synth(
    out: o.Out = Path("lmaczs-out"),
    n: o.Scenes = 100,
    seed: o.Seed = 0,
    events: o.Events = None,
    max_events: o.MaxEvents = 3,
    min_events: o.MinEvents = 1,
    masks: o.SynthMasks = True,
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.jobs.synth import scene_config, write_scenes

    rep = shared.reporter()
    rows = write_scenes(out, n, seed, scene_config(events, min_events, max_events), masks, rep)
    rep.info(f"wrote {len(rows)} scenes to {out} (manifest.csv)")
