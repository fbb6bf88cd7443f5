"""report.html in a real headless Chromium (Debian's ``chromium``; skipped without it):
no console errors, every <audio> plays (finite duration > 0), maps load, a non-blank
screenshot; hostile prompts stay text; thousands of rows stay responsive."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lmaczs_cli.report import write_report
from tests.browser import Browser, find_chromium
from tests.report_fixtures import HOSTILE, explanation_row, run_record, write_results, write_runs, write_wav

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 900

#: loads every <audio> element's metadata and reports its duration (null when not finite) or error
AUDIO_CHECK = """(async () => Promise.all([...document.querySelectorAll('audio')].map((a) =>
  new Promise((done) => {
    const report = () => done({src: a.getAttribute('src'),
      duration: Number.isFinite(a.duration) ? a.duration : null, error: a.error ? a.error.code : null});
    if (a.readyState >= 1 || a.error) { report(); return; }
    a.addEventListener('loadedmetadata', report, {once: true});
    a.addEventListener('error', report, {once: true});
    setTimeout(report, 15000);
    a.preload = 'metadata';
    a.load();
  }))))()"""

#: scrolls the first map into view, waits for the images in the viewport, reports their natural widths
VISIBLE_IMAGES = """(async () => {
  if (document.images.length) document.images[0].scrollIntoView();
  const seen = [...document.images].filter((i) => {
    const r = i.getBoundingClientRect();
    return r.top < innerHeight && r.bottom > 0;
  });
  await Promise.all(seen.map((i) => i.complete ? 0 : new Promise((r) => { i.onload = i.onerror = r; })));
  return seen.map((i) => ({src: i.getAttribute('src'), width: i.naturalWidth}));
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    return exe


def every_audio(b: Browser) -> list[dict]:
    """The audio check on every page of the explanations, with every clip's rows expanded."""
    pages = b.evaluate("window.lmaczsReport ? window.lmaczsReport.pageCount() : 1")
    found = []
    for page in range(pages):
        b.evaluate(f"window.lmaczsReport && window.lmaczsReport.show({page}, true)")
        found += b.evaluate(AUDIO_CHECK)
    return found


def screenshot_stats(png: bytes) -> tuple[tuple[int, int], float, int]:
    """(size, standard deviation of the grey levels, number of distinct colours)."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    grey = np.asarray(img.convert("L"), dtype=float)
    return img.size, float(grey.std()), len(img.getcolors(maxcolors=1 << 20) or [])


def not_blank(png: bytes) -> bool:
    _, std, colours = screenshot_stats(png)
    return std > 10.0 and colours > 100


def demo_commands(out: Path) -> list[list[str]]:
    """The Makefile's ``demo`` recipe with ``$(BIN)/lmaczs`` run from this checkout into ``out``."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    cmds = []
    for line in recipe.splitlines():
        words = shlex.split(line.strip().replace("$(DEMO_OUT)", str(out)))
        if words and words[0] == "$(BIN)/lmaczs":  # other lines (echo) only talk
            cmds.append([sys.executable, "-m", "lmaczs_cli", *words[1:]])
    assert cmds, "the Makefile's demo recipe runs no $(BIN)/lmaczs command"
    return cmds


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """report.html of `make demo`'s run (the bundled model and example clip)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for cmd in demo_commands(out):
        subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    if not (out / "report.html").exists():  # until `make demo` passes --report itself
        subprocess.run([sys.executable, "-m", "lmaczs_cli", "report", str(out)], cwd=REPO, env=env,
                       check=True, capture_output=True, timeout=120)
    return out / "report.html"


@pytest.mark.slow
def test_the_demo_report_in_chromium(chromium: str, demo_report: Path) -> None:
    with Browser(chromium, WIDTH, HEIGHT) as b:
        b.open(demo_report.as_uri())
        audio = every_audio(b)
        b.evaluate("window.lmaczsReport.show(0, false)")
        images = b.evaluate(VISIBLE_IMAGES)
        png = b.screenshot()
        errors, urls = b.console_errors(), b.requested_urls()
    keep = os.environ.get("LMACZS_SCREENSHOT_DIR")  # to look at it: CI artifacts, a developer's eyes
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / "demo-report.png").write_bytes(png)
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in urls), urls
    assert len(audio) == 1 + 2 * 2  # the original; explanation and residual of the top-2 prompts
    assert all(a["error"] is None and a["duration"] is not None for a in audio), audio
    assert all(abs(a["duration"] - 5.0) < 0.05 for a in audio)  # scene.wav and its explanations: 5 s
    assert images and all(i["width"] == 1500 for i in images)  # map.png is 1500 px wide
    size, std, colours = screenshot_stats(png)
    assert size == (WIDTH, HEIGHT) and not_blank(png), (size, std, colours)


def test_broken_audio_missing_files_and_blank_pages_are_caught(chromium: str, tmp_path: Path) -> None:
    """Negative controls: the checks above fail on a broken page."""
    out = tmp_path / "out"
    rows = [explanation_row(out, str(write_wav(tmp_path / "a.wav")), p, rank=i + 1)
            for i, p in enumerate(["bell", "knock"])]
    write_results(out, rows)
    page = write_report(out).as_uri()
    Path(rows[0]["wav"]).unlink()  # deleted after the report was written
    Path(rows[1]["wav"]).write_bytes(b"RIFF not really a wave file")
    with Browser(chromium, WIDTH, HEIGHT) as b:
        b.open(page)
        audio = every_audio(b)
        errors = b.console_errors()
        b.open("about:blank")
        blank = b.screenshot()
    broken = {a["src"].split("/")[-3].rsplit("_", 1)[0] for a in audio if a["duration"] is None}
    assert broken == {"bell", "knock"} and len(audio) == 5
    assert any("ERR_FILE_NOT_FOUND" in e for e in errors)
    assert screenshot_stats(blank)[0] == (WIDTH, HEIGHT) and not not_blank(blank)


def test_hostile_prompts_stay_text_in_chromium(chromium: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    clip = write_wav(tmp_path / "<b>x</b> & 'y'.wav")
    write_results(out, [explanation_row(out, str(clip), p, rank=i + 1) for i, p in enumerate(HOSTILE)])
    write_runs(out, [run_record("r1", warnings=['<img src=x onerror="window.__pwned=3">'])])
    with Browser(chromium, WIDTH, HEIGHT) as b:
        b.open(write_report(out).as_uri())
        shown = b.evaluate("[...document.querySelectorAll('.prompt q')].map((q) => q.textContent)")
        names = b.evaluate("[...document.querySelectorAll('.clip-name')].map((h) => h.textContent)")
        pwned = b.evaluate("window.__pwned === undefined ? null : window.__pwned")
        audio = every_audio(b)
        errors = b.console_errors()
    assert sorted(shown) == sorted(HOSTILE) and names == [str(clip)]
    assert pwned is None and errors == []
    assert len(audio) == 1 + 2 * len(HOSTILE) and all(a["duration"] for a in audio)


def test_thousands_of_rows_stay_responsive(chromium: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = {k: write_wav(out / "shared" / f"{k}.wav", seconds=0.1) for k in ("explanation", "residual")}
    rng = np.random.default_rng(0)
    sims = rng.uniform(-0.2, 0.9, (1000, 5)).round(4)
    rows = [{"clip": f"clips/c{c:04d}.wav", "prompt": f"prompt {p}", "label": f"label {p}",
             "method": "lmaczs", "rank": p + 1, "similarity": sims[c, p],
             "masked_similarity": sims[c, p] - 0.01, "mask_mean": 0.5,
             "wav": str(files["explanation"]), "residual_wav": str(files["residual"]), "png": "",
             "status": "ok"} for c in range(1000) for p in range(5)]
    write_results(out, rows)
    t0 = time.monotonic()
    page = write_report(out)
    written = time.monotonic() - t0
    with Browser(chromium, WIDTH, HEIGHT) as b:
        t0 = time.monotonic()
        b.open(page.as_uri())
        loaded = time.monotonic() - t0
        cards = b.evaluate("document.querySelectorAll('article.clip').length")
        players = b.evaluate("document.querySelectorAll('audio').length")
        pages = b.evaluate("window.lmaczsReport.pageCount()")
        best = b.evaluate("document.querySelector('article.clip .nums span').textContent")
        filtered = b.evaluate("(() => { const t = performance.now(); const n = window.lmaczsReport.filter("
                              "{prompt: 'prompt 3', sort: 'clip'}); return [n, performance.now() - t]; })()")
        first = b.evaluate("document.querySelector('.clip-name').textContent")
        errors = b.console_errors()
    assert errors == [] and written < 20 and loaded < 10, (written, loaded)
    print(f"5000 rows: report written in {written:.2f} s, page loaded in {loaded:.2f} s, "
          f"filter and sort in {filtered[1]:.0f} ms")
    # one page of 12 clips in the document (the clips are not found: no original players)
    assert cards == 12 and players == 12 * 5 * 2 and pages == 1000 // 12 + 1
    assert best == f"s {sims.max():.3f}"  # sorted by similarity, the best clip first
    assert filtered[0] == 1000 and filtered[1] < 1000 and first == "clips/c0000.wav"
