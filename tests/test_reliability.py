"""Nothing crashes a batch, nothing overwrites a result, nothing half-written stays behind.

One test (or a few) per failure a user met: tiny clips, bad --out, a full disk, results that
accumulate (also under concurrent runs), several baseline methods, idempotent resume, bit-exact
training resume after kill -9, stale temp files, rank-independent bootstrap CIs, silent
acceptance of empty prompts/folders/selections, and what `train` says it wrote.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
import tests.test_explain  # noqa: F401  (registers the "ones" explainer)
from lmaczs_cli.cli.app import app
from tests.fixtures_data import make_esc50

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
FAKE = ["--clap", "fake", "--device", "cpu"]


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tone(path: Path, sr: int = 8000, seconds: float = 0.5, freq: float = 440.0) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, subtype="FLOAT")
    return path


def _parts(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".part" in p.name]


# -- 1. tiny clips -----------------------------------------------------------------------------
def test_tiny_clips_are_explained_and_do_not_abort_the_batch(tmp_path: Path) -> None:
    clips = []
    for sr in (8000, 16000):
        for n in (1, 100, 256, 257):
            p = tmp_path / f"c{sr}_{n}.wav"
            sf.write(p, (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32), sr)
            clips.append(p)
    clips.append(_tone(tmp_path / "good.wav", 16000, 1.0))
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
    rows = _rows(out / "results.csv")
    assert len(rows) == 9 and all(x["status"] == "ok" for x in rows)
    for x in rows:  # the explanation has the clip's own rate and length, however short
        src, got = sf.info(x["clip"]), sf.info(x["wav"])
        assert (got.samplerate, got.frames) == (src.samplerate, src.frames)


# -- 2. a bad --out ----------------------------------------------------------------------------
def _read_only_mount(path: Path) -> bool:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("case", ["file", "under-a-file", "read-only-folder"])
def test_bad_out_is_refused_before_the_model_is_built(tmp_path: Path, case: str, monkeypatch) -> None:
    clip = _tone(tmp_path / "c.wav")
    (tmp_path / "f").write_text("x")
    out = {
        "file": tmp_path / "f",
        "under-a-file": tmp_path / "f" / "sub",
        "read-only-folder": tmp_path / "ro",
    }[case]
    if case == "read-only-folder":
        out.mkdir()
        import tempfile

        real = tempfile.mkstemp

        def refuse(*a, **k):  # what a read-only folder does to a non-root user
            if Path(k.get("dir", "")) == out:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real(*a, **k)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    # laion-htsat-tiny without a checkpoint would fail with another message if it were built first
    r = runner.invoke(
        app, ["explain", str(clip), "--prompt", "x", "--clap", "laion-htsat-tiny", "--out", str(out)]
    )
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lmaczs: error: --out {out}:"), r.output
    assert {
        "file": "is a file, not a folder",
        "under-a-file": "is a file, so no folder",
        "read-only-folder": "cannot write there (Permission denied)",
    }[case] in lines[0]


def test_read_only_mount_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    if not _read_only_mount(ro):
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = runner.invoke(
            app, ["explain", str(_tone(tmp_path / "c.wav")), "--prompt", "x", *FAKE, "--out", str(ro / "out")]
        )
        assert r.exit_code == 2 and "read-only file system" in r.output, r.output
    finally:
        subprocess.run(["umount", str(ro)], check=False)


# -- 3. a full disk ----------------------------------------------------------------------------
def test_disk_full_keeps_finished_rows_and_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    import lmaczs_cli.audio as audio

    clips = [_tone(tmp_path / f"c{i}.wav", freq=300 + 100 * i) for i in range(3)]
    out = tmp_path / "out"
    calls = {"n": 0}
    real = audio.write_wav

    def full_after_one(path, *a, **k):
        calls["n"] += 1
        if "c1_" in str(path):  # the second clip's WAV (whichever writer thread gets to it first)
            # the device fills up half-way through it
            Path(path).with_name(f".{Path(path).name}.x.part.wav").write_bytes(b"RIFF")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(audio, "write_wav", full_after_one)
    r = runner.invoke(
        app,
        [
            "baseline",
            "--method",
            "gradcam",
            *map(str, clips),
            "--prompt",
            "beep",
            *FAKE,
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 1, r.output
    assert r.output.strip().splitlines()[-1].endswith("explanation.wav: no space left on device")
    rows = _rows(out / "results.csv")
    assert [Path(x["clip"]).name for x in rows] == ["c0.wav"] and rows[0]["status"] == "ok"
    assert Path(rows[0]["wav"]).is_file()
    second = out / next(p.name for p in out.iterdir() if p.name.startswith("c1_"))
    assert not [p for p in second.rglob("*") if p.is_file() and not p.name.startswith(".")]
    # the temp file a real full disk leaves behind is gone at the next start in this --out
    assert _parts(out)
    monkeypatch.setattr(audio, "write_wav", real)
    r = runner.invoke(
        app,
        [
            "baseline",
            "--method",
            "gradcam",
            *map(str, clips),
            "--prompt",
            "beep",
            *FAKE,
            "--out",
            str(out),
            "--quiet",
            "--resume",
        ],
    )
    assert r.exit_code == 0, r.output
    assert not _parts(out) and len(_rows(out / "results.csv")) == 3


def test_disk_full_on_a_real_small_tmpfs(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        clips = [_tone(tmp_path / f"c{i}.wav", 8000, 3.0, 300 + 100 * i) for i in range(6)]
        r = runner.invoke(
            app,
            [
                "explain",
                *map(str, clips),
                "--prompt",
                "beep",
                "--clap",
                "fake",
                "--device",
                "cpu",
                "--decoder",
                str(_fake_decoder(tmp_path)),
                "--out",
                str(mnt / "out"),
                "--quiet",
            ],
        )
        assert r.exit_code == 1, r.output
        assert "no space left on device" in r.output and "Traceback" not in r.output
        rows = _rows(mnt / "out" / "results.csv")
        assert 0 < len(rows) < 6 and all(Path(x["wav"]).is_file() for x in rows)
        assert not _parts(mnt / "out")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _fake_decoder(folder: Path) -> Path:
    from lmaczs_cli.checkpoints import decoder_payload, save_checkpoint
    from lmaczs_cli.explainers.decoder import MaskDecoder
    from tests.fake_model import FakeModel

    m = FakeModel()
    path = folder / "fake-decoder.pt"
    save_checkpoint(path, decoder_payload(MaskDecoder.for_model(m, width=16), m.spec_id()))
    return path


# -- 4. results accumulate ---------------------------------------------------------------------
def test_runs_into_the_same_out_add_their_rows(tmp_path: Path) -> None:
    clips = [_tone(tmp_path / f"c{i}.wav", freq=300 + 50 * i) for i in range(2)]
    out = tmp_path / "out"
    base = ["baseline", *map(str, clips), *FAKE, "--out", str(out), "--quiet"]
    assert runner.invoke(app, [*base, "--method", "gradcam", "--prompt", "beep"]).exit_code == 0
    assert runner.invoke(app, [*base, "--method", "gradcam++", "--prompt", "siren"]).exit_code == 0
    assert runner.invoke(app, [*base, "--method", "gradcam", "--prompt", "beep"]).exit_code == 0  # an update
    rows = _rows(out / "results.csv")
    assert sorted((Path(x["clip"]).name, x["prompt"], x["method"]) for x in rows) == [
        ("c0.wav", "beep", "gradcam"),
        ("c0.wav", "siren", "gradcam++"),
        ("c1.wav", "beep", "gradcam"),
        ("c1.wav", "siren", "gradcam++"),
    ]


def test_a_failed_input_that_now_works_loses_its_error_row(tmp_path: Path) -> None:
    out = tmp_path / "out"
    clip = tmp_path / "c.wav"
    clip.write_text("not audio yet")
    args = [
        "baseline",
        "--method",
        "gradcam",
        str(clip),
        "--prompt",
        "beep",
        *FAKE,
        "--out",
        str(out),
        "--quiet",
    ]
    assert runner.invoke(app, args).exit_code == 1
    assert [x["status"] for x in _rows(out / "results.csv")] == ["error"]
    _tone(clip)
    assert runner.invoke(app, args).exit_code == 0
    assert [x["status"] for x in _rows(out / "results.csv")] == ["ok"]


@pytest.mark.slow
def test_two_concurrent_runs_keep_every_row(tmp_path: Path) -> None:
    folders = []
    for k in range(2):
        d = tmp_path / f"set{k}"
        d.mkdir()
        for i in range(10):
            _tone(d / f"k{k}_{i}.wav", freq=200 + 37 * i + 500 * k)
        folders.append(d)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fake_model",
                "baseline",
                "--method",
                "gradcam",
                str(d),
                "--prompt",
                "beep",
                *FAKE,
                "--out",
                str(out),
                "--quiet",
            ],
            env=env,
            cwd=REPO,
        )
        for d in folders
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    rows = _rows(out / "results.csv")
    assert len(rows) == 20 and len({x["clip"] for x in rows}) == 20
    assert not _parts(out)


# -- 5. several baseline methods in one run ----------------------------------------------------
def test_baseline_runs_every_method_given(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(
        app,
        [
            "baseline",
            "--method",
            "gradcam",
            "--method",
            "ig",
            "--ig-steps",
            "3",
            str(_tone(tmp_path / "c.wav")),
            "--prompt",
            "beep",
            *FAKE,
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sorted(x["method"] for x in _rows(out / "results.csv")) == ["gradcam", "ig"]
    r = runner.invoke(app, ["baseline", "--method", "lmaczs", str(tmp_path / "c.wav"), "-p", "x", *FAKE])
    assert r.exit_code == 2 and "--method 'lmaczs': expected one of gradcam" in r.output


# -- 6. evaluate --resume is idempotent --------------------------------------------------------
def test_evaluate_resume_adds_no_rows(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    bad = sorted((root / "audio").iterdir())[0]
    bad.write_text("corrupt")
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--dataset",
        "esc50",
        "--data-root",
        str(root),
        "--method",
        "ones",
        *FAKE,
        "--out",
        str(out),
        "--quiet",
    ]
    assert runner.invoke(app, args).exit_code == 1
    first = _rows(out / "samples.csv")
    for _ in range(2):
        assert runner.invoke(app, [*args, "--resume"]).exit_code == 1
    again = _rows(out / "samples.csv")
    assert len(again) == len(first) == 10 and sum(x["status"] == "error" for x in again) == 1
    # another method into the same folder adds its rows; the summary covers both
    assert runner.invoke(app, [*args[:6], "gradcam", *args[7:]]).exit_code == 1
    rows = _rows(out / "samples.csv")
    assert len([x for x in rows if x["status"] == "ok"]) == 18
    assert {x["method"] for x in _rows(out / "summary.csv")} == {"ones", "gradcam"}


# -- 7. train --resume after kill -9 is bit-exact ----------------------------------------------
@pytest.mark.slow
def test_train_resume_after_kill_is_bit_exact(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "lmaczs_cli",
        "train",
        "--clap",
        "small",
        "--data",
        "synth",
        "--synth-scenes",
        "64",
        "--val-size",
        "8",
        "--steps",
        "8",
        "--save-every",
        "2",
        "--val-every",
        "4",
        "--batch-size",
        "4",
        "--num-workers",
        "2",
        "--log-every",
        "1",
        "--quiet",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run([*args, "--out", str(tmp_path / "a")], check=True, env=env, timeout=600)
    p = subprocess.Popen([*args, "--out", str(tmp_path / "b")], env=env)
    log = tmp_path / "b" / "log.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # kill between two checkpoints (saved at 2, 4, ...)
        steps = [json.loads(x)["step"] for x in log.read_text().splitlines()] if log.exists() else []
        if steps and max(steps) >= 5:
            break
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert torch.load(tmp_path / "b" / "latest.pt", weights_only=True)["train_state"]["step"] in (4, 6)
    subprocess.run([*args, "--out", str(tmp_path / "b"), "--resume"], check=True, env=env, timeout=600)
    a = torch.load(tmp_path / "a" / "latest.pt", weights_only=True)["decoder"]
    b = torch.load(tmp_path / "b" / "latest.pt", weights_only=True)["decoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_text_embeddings_do_not_depend_on_the_batch() -> None:
    import lmaczs_cli

    m = lmaczs_cli.load_model("small", device="cpu")
    one = m.embed_text(["this is a sound of beep"])[0]
    m.clear_text_cache()
    many = m.embed_text(["rain falls", "this is a sound of beep", "a dog", "bells ring twice"])[1]
    assert torch.equal(one, many)


# -- 8. stale temp files -----------------------------------------------------------------------
def test_stale_temp_files_are_removed_only_when_no_run_holds_the_folder(tmp_path: Path) -> None:
    from lmaczs_cli.outdir import OutDir

    out = tmp_path / "out"
    (out / "clip_1234" / "beep").mkdir(parents=True)
    stale = [out / ".results.csv.ab12.part", out / "clip_1234" / "beep" / ".explanation.wav.k3j.part.wav"]
    keep = out / "clip_1234" / "notes.part.txt"  # not a temp file of ours
    with OutDir(out):  # a run is active: its temp files are live, a second run leaves them
        for p in [*stale, keep]:
            p.write_bytes(b"x")
        with OutDir(out) as second:
            assert second.cleaned == [] and all(p.exists() for p in stale)
    with OutDir(out) as alone:
        assert sorted(alone.cleaned) == sorted(stale)
    assert not any(p.exists() for p in stale) and keep.exists()


# -- 9. bootstrap CIs do not depend on the number of ranks -------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_evaluate_under_torchrun_gives_the_same_summary(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    args = [
        "evaluate",
        "--dataset",
        "esc50",
        "--data-root",
        str(root),
        "--method",
        "gradcam",
        "--clap",
        "fake",
        "--device",
        "cpu",
        "--batch-size",
        "3",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "tests.fake_model", *args, "--out", str(tmp_path / "one")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            "-m",
            "tests.fake_model",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "one" / "summary.csv").read_bytes() == (tmp_path / "two" / "summary.csv").read_bytes()
    assert not list((tmp_path / "two").glob("samples.rank*"))


# -- 10. silent acceptance ---------------------------------------------------------------------
@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_refused(tmp_path: Path, prompt: str) -> None:
    r = runner.invoke(
        app,
        ["explain", str(_tone(tmp_path / "c.wav")), "--prompt", prompt, *FAKE, "--out", str(tmp_path / "o")],
    )
    assert r.exit_code == 2 and "--prompt: empty prompt" in r.output and not (tmp_path / "o").exists()


def test_empty_folder_is_a_failed_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o"
    r = runner.invoke(
        app,
        [
            "explain",
            str(tmp_path / "empty"),
            str(_tone(tmp_path / "c.wav")),
            "--prompt",
            "x",
            *FAKE,
            "--decoder",
            str(_fake_decoder(tmp_path)),
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 1 and "empty: folder holds no audio files" in r.output
    rows = _rows(out / "results.csv")
    assert sorted(x["status"] for x in rows) == ["error", "ok"]
    r = runner.invoke(app, ["classify", str(tmp_path / "empty"), "--prompt", "x", *FAKE, "--out", str(out)])
    assert r.exit_code == 1 and "folder holds no audio files" in r.output


def test_a_selection_with_no_clips_is_refused(tmp_path: Path) -> None:
    from tests.fixtures_data import ESC50_ROWS

    root = make_esc50(tmp_path / "ESC-50", rows=[r for r in ESC50_ROWS if r[1] in (2, 3)])
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "esc50",
            "--data-root",
            str(root),
            "--folds",
            "1",
            *FAKE,
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 2 and "no clips selected with --folds 1" in r.output


# -- 11. what train says it wrote; folds --------------------------------------------------------
def test_train_says_what_it_wrote_and_keeps_folds_apart(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    out = tmp_path / "run"
    base = [
        "train",
        "--data",
        "esc50",
        "--data-root",
        str(root),
        "--clap",
        "fake",
        "--device",
        "cpu",
        "--width",
        "16",
        "--batch-size",
        "2",
        "--num-workers",
        "0",
        "--val-every",
        "2",
        "--out",
        str(out),
    ]
    r = runner.invoke(app, [*base, "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert "training on every fold of esc50" in r.stderr and "--exclude-folds" in r.stderr
    assert f"wrote {out / 'latest.pt'} and {out / 'best.pt'}" in r.stderr
    r = runner.invoke(app, [*base, "--steps", "4", "--max-steps", "3", "--resume"])
    assert r.exit_code == 0 and "wrote" in r.stderr
    held = tmp_path / "held"
    r = runner.invoke(app, [*base[:-1], str(held), "--steps", "2", "--exclude-folds", "5"])
    assert r.exit_code == 0 and "every fold" not in r.stderr, r.output
    ckpt = torch.load(held / "best.pt", weights_only=True)
    assert ckpt["training"][0]["data"] == "esc50" and ckpt["training"][0]["folds"] == [1, 2, 3, 4]
    # evaluating that decoder on a fold it was trained on says so; on the held-out fold it does not
    ev = [
        "evaluate",
        "--dataset",
        "esc50",
        "--data-root",
        str(root),
        "--method",
        "lmaczs",
        *FAKE,
        "--decoder",
        str(held / "best.pt"),
        "--quiet",
    ]
    r = runner.invoke(app, [*ev, "--folds", "4-5", "--out", str(tmp_path / "e1")])
    assert r.exit_code == 0 and "trained on esc50 fold(s) 4, which this run evaluates" in r.stderr
    r = runner.invoke(app, [*ev, "--folds", "5", "--out", str(tmp_path / "e2")])
    assert r.exit_code == 0 and "trained on" not in r.stderr
    r = runner.invoke(app, [*base, "--steps", "2", "--folds", "1-6", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "esc50 has folds 1-5" in r.output


# -- all of it at once -----------------------------------------------------------------------
@pytest.mark.slow
def test_a_hostile_folder_gives_every_good_clip_its_rows(tmp_path: Path) -> None:
    """Every bad input the tests above use, plus good clips, in one folder, in one run."""
    d = tmp_path / "inputs"
    d.mkdir()
    good = [_tone(d / "good a.wav", 16000, 1.0), _tone(d / "ünïcode-名前.wav", 22050, 0.7, 660.0)]
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
    rows = _rows(out / "results.csv")
    ok = {Path(x["clip"]).name for x in rows if x["status"] == "ok"}
    failed = {Path(x["clip"]).name for x in rows if x["status"] == "error"}
    assert ok == {p.name for p in good}
    assert failed == set(bad)
    assert all(f"{name}:" in r.stderr for name in bad)  # each named, with its reason, on one line
    assert f"{len(bad)} of {len(good) + len(bad)} inputs failed" in r.stderr
    after = {p for p in tmp_path.rglob("*") if out not in p.parents and p != out}
    assert after == before  # nothing written outside --out
    assert not _parts(out)
    for x in rows:
        if x["status"] == "ok":
            assert sf.info(x["wav"]).frames == sf.info(x["clip"]).frames
            assert np.isfinite(float(x["similarity"])) and np.isfinite(float(x["masked_similarity"]))
    assert {x["prompt"] for x in rows if x["status"] == "ok"} == {"this is a sound of beep", "dog\rbark"}
    assert all("truncated file" in x["warning"] for x in rows if x["clip"].endswith("trunc.wav"))


def test_one_file_named_two_ways_is_one_row(tmp_path: Path, monkeypatch) -> None:
    """A clip given by absolute path, then relative to the working folder, then through a link:
    one file, one folder, one row per (prompt, method) - the later run replaces the earlier."""
    clip = _tone(tmp_path / "c.wav")
    (tmp_path / "link.wav").symlink_to(clip)
    out = tmp_path / "out"
    base = [*FAKE, "--method", "gradcam", "--prompt", "beep", "--out", str(out), "--quiet"]
    assert runner.invoke(app, ["baseline", str(clip), *base]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["baseline", "c.wav", *base]).exit_code == 0
    assert runner.invoke(app, ["baseline", "link.wav", *base]).exit_code == 0
    rows = _rows(out / "results.csv")
    assert [x["clip"] for x in rows] == [str(clip.resolve())]
    assert Path(rows[0]["wav"]).is_file()
