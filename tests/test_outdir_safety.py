"""The output folder: a bad --out is refused before any work, a full disk keeps the finished
rows and leaves no partial file, and stale temp files go only when no run holds the folder."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from lmaczs_cli.cli.app import app
from tests.helpers_runs import FAKE, fake_decoder, part_files, read_rows, runner, tone


# -- a bad --out -------------------------------------------------------------------------------
def _read_only_mount(path: Path) -> bool:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.mark.parametrize("case", ["file", "under-a-file", "read-only-folder"])
def test_bad_out_is_refused_before_the_model_is_built(tmp_path: Path, case: str, monkeypatch) -> None:
    clip = tone(tmp_path / "c.wav")
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
            app, ["explain", str(tone(tmp_path / "c.wav")), "--prompt", "x", *FAKE, "--out", str(ro / "out")]
        )
        assert r.exit_code == 2 and "read-only file system" in r.output, r.output
    finally:
        subprocess.run(["umount", str(ro)], check=False)


# -- a full disk -------------------------------------------------------------------------------
def test_disk_full_keeps_finished_rows_and_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    import lmaczs_cli.audio as audio

    clips = [tone(tmp_path / f"c{i}.wav", freq=300 + 100 * i) for i in range(3)]
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
    rows = read_rows(out / "results.csv")
    assert [Path(x["clip"]).name for x in rows] == ["c0.wav"] and rows[0]["status"] == "ok"
    assert Path(rows[0]["wav"]).is_file()
    second = out / next(p.name for p in out.iterdir() if p.name.startswith("c1_"))
    assert not [p for p in second.rglob("*") if p.is_file() and not p.name.startswith(".")]
    # the temp file a real full disk leaves behind is gone at the next start in this --out
    assert part_files(out)
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
    assert not part_files(out) and len(read_rows(out / "results.csv")) == 3


def test_disk_full_on_a_real_small_tmpfs(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        clips = [tone(tmp_path / f"c{i}.wav", 8000, 3.0, 300 + 100 * i) for i in range(6)]
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
                str(fake_decoder(tmp_path)),
                "--out",
                str(mnt / "out"),
                "--quiet",
            ],
        )
        assert r.exit_code == 1, r.output
        assert "no space left on device" in r.output and "Traceback" not in r.output
        rows = read_rows(mnt / "out" / "results.csv")
        assert 0 < len(rows) < 6 and all(Path(x["wav"]).is_file() for x in rows)
        assert not part_files(mnt / "out")
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# -- stale temp files --------------------------------------------------------------------------
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
