"""Bad inputs do not crash a batch: tiny clips are explained, unreadable ones are failed inputs,
and every good clip of a hostile folder gets its rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lmaczs_cli.cli.app import app
from tests.helpers_runs import REPO, part_files, read_rows, runner, tone


# -- tiny clips --------------------------------------------------------------------------------
def test_tiny_clips_are_explained_and_do_not_abort_the_batch(tmp_path: Path) -> None:
    clips = []
    for sr in (8000, 16000):
        for n in (1, 100, 256, 257):
            p = tmp_path / f"c{sr}_{n}.wav"
            sf.write(p, (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32), sr)
            clips.append(p)
    clips.append(tone(tmp_path / "good.wav", 16000, 1.0))
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        [
            "explain",
            *map(str, clips),
            "--clap",
            "small",
            "--prompt",
            "this is a sound of beep",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = read_rows(out / "results.csv")
    assert len(rows) == 9 and all(x["status"] == "ok" for x in rows)
    for x in rows:  # the explanation has the clip's own rate and length, however short
        src, got = sf.info(x["clip"]), sf.info(x["wav"])
        assert (got.samplerate, got.frames) == (src.samplerate, src.frames)


# -- every bad input at once -----------------------------------------------------------------------
@pytest.mark.slow
def test_a_hostile_folder_gives_every_good_clip_its_rows(tmp_path: Path) -> None:
    """Bad inputs of every kind (tiny, empty, not audio, a bad header, NaN, absurd values, a link
    loop, truncated) and good clips, in one folder, in one run."""
    d = tmp_path / "inputs"
    d.mkdir()
    good = [tone(d / "good a.wav", 16000, 1.0), tone(d / "ünïcode-名前.wav", 22050, 0.7, 660.0)]
    sf.write(
        d / "stereo 44k.wav",
        np.stack([np.sin(np.arange(44100) / 7.0)] * 2, 1).astype(np.float32) * 0.3,
        44100,
        subtype="PCM_16",
    )
    good.append(d / "stereo 44k.wav")
    for n in (1, 100, 256, 257):  # tiny but readable: explained
        sf.write(d / f"tiny{n}.wav", np.full(n, 0.1, np.float32), 16000)
        good.append(d / f"tiny{n}.wav")
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("not audio\n" * 10)
    (d / "header.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 10)
    (d / "folder.wav").mkdir()
    sf.write(d / "nan.wav", np.full(800, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(d / "huge.wav", np.full(800, 3e29, np.float32), 16000, subtype="FLOAT")  # finite, absurd
    (d / "loop.wav").symlink_to("loop.wav")
    (d / "trunc.wav").write_bytes((d / "stereo 44k.wav").read_bytes()[:60])  # header promises 1 s
    good.append(d / "trunc.wav")
    bad = ["empty.wav", "text.wav", "header.wav", "nan.wav", "huge.wav", "loop.wav"]
    out = tmp_path / "out"
    before = {p for p in tmp_path.rglob("*") if out not in p.parents}
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmaczs_cli",
            "explain",
            str(d),
            "--clap",
            "small",
            "--prompt",
            "this is a sound of beep",
            "--prompt",
            "dog\rbark",
            "--residual",
            "--save-mask",
            "--out",
            str(out),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    rows = read_rows(out / "results.csv")
    ok = {Path(x["clip"]).name for x in rows if x["status"] == "ok"}
    failed = {Path(x["clip"]).name for x in rows if x["status"] == "error"}
    assert ok == {p.name for p in good}
    assert failed == set(bad)
    assert all(f"{name}:" in r.stderr for name in bad)  # each named, with its reason, on one line
    assert f"{len(bad)} of {len(good) + len(bad)} inputs failed" in r.stderr
    after = {p for p in tmp_path.rglob("*") if out not in p.parents and p != out}
    assert after == before  # nothing written outside --out
    assert not part_files(out)
    for x in rows:
        if x["status"] == "ok":
            assert sf.info(x["wav"]).frames == sf.info(x["clip"]).frames
            assert np.isfinite(float(x["similarity"])) and np.isfinite(float(x["masked_similarity"]))
    assert {x["prompt"] for x in rows if x["status"] == "ok"} == {"this is a sound of beep", "dog\rbark"}
    assert all("truncated file" in x["warning"] for x in rows if x["clip"].endswith("trunc.wav"))
