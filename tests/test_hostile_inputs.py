"""The last holes a hostile-input audit found (issue #31): each input gets its row or its one-line
error, every number written is finite, and what a user should know of a clip is on its row."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli.cli.app import app
from lmaczs_cli.inputs import collect_inputs

runner = CliRunner()
SMALL = ["--clap", "small", "--device", "cpu", "--quiet"]


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tone(path: Path, sr: int = 16000, seconds: float = 1.0, amp: float = 0.3) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


# -- 1. links that lead nowhere ------------------------------------------------------------------
def test_a_symlink_loop_and_a_dangling_link_are_error_rows_named_as_given(tmp_path: Path) -> None:
    good = _tone(tmp_path / "good.wav")
    (tmp_path / "loop.wav").symlink_to("loop.wav")
    (tmp_path / "dangling.wav").symlink_to("gone.wav")
    inputs = collect_inputs([good, tmp_path / "loop.wav", tmp_path / "dangling.wav"])  # no RuntimeError
    assert [p.name for p in inputs.paths] == ["good.wav", "loop.wav", "dangling.wav"]
    out = tmp_path / "out"
    r = runner.invoke(app, ["explain", str(good), str(tmp_path / "loop.wav"), str(tmp_path / "dangling.wav"),
                            *SMALL, "--prompt", "beep", "--out", str(out)])
    assert r.exit_code == 1 and r.exception is None or isinstance(r.exception, SystemExit), r.output
    rows = {Path(x["clip"]).name: x for x in _rows(out / "results.csv")}
    assert rows["good.wav"]["status"] == "ok"
    assert rows["loop.wav"]["status"] == "error" and "symbolic link loop" in rows["loop.wav"]["error"]
    assert rows["dangling.wav"]["status"] == "error"
    assert "broken symbolic link (its target gone.wav does not exist)" in rows["dangling.wav"]["error"]
    assert "2 of 3 inputs failed" in r.stderr


def test_a_folder_lists_its_broken_links_as_failed_inputs(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    _tone(d / "a.wav")
    (d / "loop.wav").symlink_to("loop.wav")
    (d / "self").symlink_to(d)  # a link back to the folder is not followed for ever
    assert sorted(p.name for p in collect_inputs([d]).paths) == ["a.wav", "loop.wav"]


# -- 2. any prompt text draws ----------------------------------------------------------------------
def test_printable_escapes_control_and_format_characters_and_cuts_long_text() -> None:
    from lmaczs_cli.render import printable

    assert printable("dog\r") == "dog\\r"
    assert printable("\u202eevil\u200b") == "\\u202eevil\\u200b"
    assert printable("tab\there\nnext") == "tab\\there\\nnext"
    long = printable("x" * 10_000)
    assert len(long) == 80 and long.endswith("…")
    assert printable("chien qui aboie — 犬") == "chien qui aboie — 犬"


def test_a_carriage_return_or_an_rtl_mark_in_a_prompt_does_not_stop_the_run(tmp_path: Path) -> None:
    from PIL import Image

    from lmaczs_cli.render import MAP_SIZE

    clip = _tone(tmp_path / "c.wav")
    out = tmp_path / "out"
    prompts = ["dog\rbark", "\u202eevil\u200b", "x" * 10_000, "rain"]
    r = runner.invoke(app, ["explain", str(clip), *SMALL, *[a for p in prompts for a in ("--prompt", p)],
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = _rows(out / "results.csv")
    assert len(rows) == 4 and {x["status"] for x in rows} == {"ok"}
    for x in rows:
        with Image.open(x["png"]) as im:
            assert im.size == MAP_SIZE


def test_the_map_renderer_takes_any_title_and_banner(tmp_path: Path) -> None:
    from lmaczs_cli.mapimage import render_map_png

    mag = np.abs(np.random.default_rng(0).normal(size=(65, 40))).astype(np.float32)
    title = "a\rb\x00c\u202e" + "y" * 5000
    path = render_map_png(tmp_path / "m.png", mag, np.ones_like(mag), 16000, 160, title, banner="B\r\n")
    assert path.is_file() and path.stat().st_size > 0


# -- 3. numbers are finite or the clip is an error -----------------------------------------------
@pytest.mark.parametrize("peak", [3e29, -3e29, 1e5, 2e3, 1e-30, 1e-38])
def test_extreme_but_finite_samples_give_finite_numbers_or_an_error_row(tmp_path: Path, peak: float) -> None:
    rng = np.random.default_rng(1)
    wave = (rng.uniform(-1, 1, 16000) * abs(peak)).astype(np.float32)
    wave[100] = peak
    clip = tmp_path / "x.wav"
    sf.write(clip, wave, 16000, subtype="FLOAT")
    out = tmp_path / "out"
    r = runner.invoke(app, ["explain", str(clip), *SMALL, "--prompt", "beep", "--out", str(out)])
    (row,) = _rows(out / "results.csv")
    if row["status"] == "error":
        assert r.exit_code == 1 and "far beyond full scale" in row["error"] and abs(peak) > 1e4
        assert not list((out).rglob("*.wav"))
        return
    assert r.exit_code == 0, r.output
    for k in ("similarity", "masked_similarity", "mask_mean"):
        assert np.isfinite(float(row[k])), (k, row[k])
    data, _ = sf.read(row["wav"])
    assert np.isfinite(data).all() and np.abs(data).max() <= 1.0
    assert ("exceed full scale" in row["warning"]) == (abs(peak) > 2)


def test_a_clip_whose_numbers_are_not_finite_is_an_error_not_a_row_of_nan() -> None:
    from lmaczs_cli.api import _not_finite
    from lmaczs_cli.explaining import ClipResult, PairResult

    ok = PairResult(0, torch.ones(3, 4), 0.2, 0.3)
    res = ClipResult({"path": "c.wav"}, torch.ones(3, 4), torch.zeros(3, 4), torch.tensor([0.2]), [ok])
    assert _not_finite(res) is None
    res.pairs.append(PairResult(0, torch.full((3, 4), float("nan")), 0.2, float("inf")))
    msg = _not_finite(res)
    assert msg.startswith("c.wav: ") and "mask, masked similarity" in msg and "\n" not in msg


# -- 4. train cleans its folder like every command --------------------------------------------------
def test_train_removes_temp_files_a_killed_run_left(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    orphans = [out / ".latest.pt.a1b2c3.pt.part", out / ".log.jsonl.x9y8.part"]
    for p in orphans:
        p.write_bytes(b"half")
    r = runner.invoke(app, ["train", "--clap", "fake", "--data", "synth", "--synth-scenes", "8",
                            "--val-size", "4", "--steps", "1", "--batch-size", "2", "--width", "8",
                            "--num-workers", "0", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not any(p.exists() for p in orphans)
    assert "removed 2 temp files left by an interrupted run" in r.stderr
    assert (out / "latest.pt").is_file()


# -- 5. what a user should know of a clip is on its row and in run.json ---------------------------
def test_a_truncated_file_and_channels_that_cancel_are_explained_with_a_warning(tmp_path: Path) -> None:
    full = _tone(tmp_path / "full.wav", seconds=3.0)
    (tmp_path / "trunc.wav").write_bytes(full.read_bytes()[:60])  # header + 8 samples of a 3 s file
    t = np.arange(16000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 300 * t)
    sf.write(tmp_path / "cancel.wav", np.stack([tone, -tone], 1).astype(np.float32), 16000, subtype="PCM_16")
    good = _tone(tmp_path / "good.wav")
    out = tmp_path / "out"
    clips = [tmp_path / "trunc.wav", tmp_path / "cancel.wav", good]
    r = runner.invoke(app, ["explain", *map(str, clips), *SMALL, "--prompt", "beep", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = {Path(x["clip"]).name: x for x in _rows(out / "results.csv")}
    promise = "truncated file: its header promises 48000 frames (3 s) but it holds 8"
    assert promise in rows["trunc.wav"]["warning"]
    assert "channels cancel out" in rows["cancel.wav"]["warning"]
    assert rows["good.wav"]["warning"] == ""
    warnings = json.loads((out / "run.json").read_text())["warnings"]
    assert any("trunc.wav: truncated file" in w for w in warnings)
    assert any("cancel.wav: the mono mix the model hears is digital silence" in w for w in warnings)
    assert r.stderr.count("trunc.wav: truncated file") == 1  # once, however many prompts


# -- 7. long label lists: batched text, a message that tells what works ---------------------------
def test_batched_text_embeddings_match_one_by_one() -> None:
    from lmaczs_cli.jobs.reporter import Reporter
    from lmaczs_cli.jobs.text_embedding import TEXT_BATCH, embed_prompts
    from lmaczs_cli.models.registry import create_model

    texts = [f"a sound of thing {i}" for i in range(TEXT_BATCH + 5)]
    one = create_model("small").embed_text(texts)
    calls = []

    class Counting(Reporter):
        def progress(self, total, label):
            calls.append((total, label))
            return super().progress(total, label)

    model = create_model("small")
    seen = []
    inner = model._embed_text
    model._embed_text = lambda batch: (seen.append(len(batch)), inner(batch))[1]  # type: ignore[method-assign]
    got = embed_prompts(model, texts, Counting())
    assert torch.allclose(got, one, atol=1e-5)
    assert seen == [TEXT_BATCH, 5] and calls == [(len(texts), "text")]


def test_no_decoder_message_names_what_works_without_one_and_does_not_repeat_advice() -> None:
    from types import SimpleNamespace

    from lmaczs_cli.errors import UsageError
    from lmaczs_cli.preflight import check_ready

    run = SimpleNamespace(clap="laion-htsat-tiny", clap_ckpt="random", tokenizer_dir=None)
    with pytest.raises(UsageError) as e:
        check_ready("evaluate", run, ["lmaczs"], {"lmaczs": {}})
    msg = str(e.value)
    assert "lmaczs-perclip" in msg and "--clap-ckpt random" not in msg and "\n" not in msg


# -- 8. small things ------------------------------------------------------------------------------
def test_labels_that_differ_only_in_case_are_named_in_a_warning(tmp_path: Path) -> None:
    from lmaczs_cli.data.prompts import Prompt, duplicate_warning

    assert duplicate_warning([Prompt("dog", "dog"), Prompt("cat", "cat")]) is None
    msg = duplicate_warning([Prompt("dog", "dog"), Prompt("Dog", "Dog"), Prompt("rain", " rain  ")])
    assert "'dog' / 'Dog'" in msg and "rain" not in msg
    labels = tmp_path / "labels.txt"
    labels.write_text("dog\nDog\ncat\n")
    r = runner.invoke(app, ["classify", str(_tone(tmp_path / "c.wav")), *SMALL, "--prompts-file", str(labels),
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0 and "differ only in case or spacing ('dog' / 'Dog')" in r.stderr


def test_no_third_party_noise_on_stderr(tmp_path: Path, capfd) -> None:
    """torch's pickle-protocol note and mpg123's resync notes stay off the user's terminal."""
    import subprocess
    import sys

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"a": 1}, protocol=5))
    noise = 0.1 * np.random.default_rng(0).standard_normal(32000)
    sf.write(tmp_path / "a.mp3", noise.astype(np.float32), 16000, format="MP3")
    b = (tmp_path / "a.mp3").read_bytes()
    (tmp_path / "damaged.mp3").write_bytes(b[:400] + b"\x00" * 300 + b[400:])
    base = [sys.executable, "-m", "lmaczs_cli"]
    mp3 = str(tmp_path / "damaged.mp3")
    r1 = subprocess.run([*base, "explain", mp3, "--clap", "small", "--prompt", "beep", "--decoder", str(raw),
                         "--out", str(tmp_path / "o1")], capture_output=True, text=True)
    assert r1.returncode == 2 and "not a loadable decoder checkpoint" in r1.stderr
    assert "pickle protocol" not in r1.stderr and len(r1.stderr.strip().splitlines()) == 1
    r2 = subprocess.run([*base, "classify", mp3, "--clap", "small", "--prompt", "beep", "--out",
                         str(tmp_path / "o2"), "--quiet"], capture_output=True, text=True)
    assert r2.returncode == 0, r2.stderr
    assert "Illegal Audio-MPEG-Header" not in r2.stderr and "resync" not in r2.stderr
