"""report.html without a browser: what the page holds (rows, numbers, links, escaping, banner,
warnings, evaluate and sanity-check sections) and the `lmaczs report` command."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.explain import pair_dir
from lmaczs_cli.report import write_report
from lmaczs_cli.report.html import page_json
from tests.report_fixtures import (
    HOSTILE,
    explanation_row,
    run_record,
    write_evaluate,
    write_results,
    write_runs,
    write_sanity,
    write_wav,
)


class Page(HTMLParser):
    """Tags with attributes, visible text, script bodies and the page data of a report."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self._script: dict[str, str] | None = None
        self.feed(text)
        data = [body for attrs, body in self.scripts if attrs.get("id") == "lmaczs-data"]
        self.data = json.loads(data[0]) if data else None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag in ("script", "style"):
            self._script = {**a, "tag": tag}

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            if self._script.pop("tag", "script") == "script":
                self.scripts.append((self._script, data))
        else:
            self.text.append(data)

    @property
    def body_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def links(self) -> list[str]:
        return [a[k] for t, a in self.tags for k in ("src", "href") if k in a]


def report(run_dir: Path, **kw) -> Page:
    return Page(write_report(run_dir, **kw).read_text(encoding="utf-8"))


def target(run_dir: Path, link: str) -> Path:
    """The file a relative link of the report points at."""
    return (run_dir / unquote(link)).resolve()


@pytest.fixture
def explain_dir(tmp_path: Path) -> Path:
    """Two clips (one outside the folder), three pairs, one failed input, provenance columns."""
    out = tmp_path / "runs" / "expl"
    a = str(write_wav(tmp_path / "clips" / "dog bark #1.wav"))
    b = str(write_wav(out / "inside.wav", freq=880))
    rows = [
        explanation_row(out, a, "dog barking", rank=1, s=0.71, s_masked=0.70, run_id="r1", model="small",
                        checkpoint="bundled", decoder="/d.pt", mask_domain="stft", faithful="1"),
        explanation_row(out, a, "rain", rank=2, s=0.20, s_masked=0.55, residual=False, run_id="r1",
                        faithful="0"),
        explanation_row(out, b, "dog barking", method="gradcam", s=0.33, s_masked=0.31, run_id="r2"),
        {"clip": str(tmp_path / "broken.wav"), "method": "lmaczs", "status": "error",
         "error": "broken.wav: not an audio file"},
    ]
    write_results(out, rows)
    write_runs(out, [run_record("r1"), run_record("r2", command="baseline")])
    return out


def test_rows_numbers_and_files_are_on_the_page(explain_dir: Path) -> None:
    page = report(explain_dir)
    data = page.data
    assert [c["name"] for c in data["clips"]][1].endswith("inside.wav")
    by = {(r["prompt"], r["method"]): r for r in data["rows"]}
    bark = by[("dog barking", "lmaczs")]
    numbers = (bark["similarity"], bark["masked_similarity"], bark["rank"], bark["faithful"])
    assert numbers == (0.71, 0.70, 1, True)
    assert (bark["run_id"], bark["checkpoint"], bark["mask_domain"]) == ("r1", "bundled", "stft")
    assert by[("rain", "lmaczs")]["faithful"] is False and by[("dog barking", "gradcam")]["faithful"] is None
    assert by[("rain", "lmaczs")]["residual"] is None  # no residual written, so no player
    clip = page.data["clips"][bark["clip"]]["name"]
    assert target(explain_dir, bark["explanation"]) == (
        pair_dir(explain_dir, clip, "dog barking", "lmaczs") / "explanation.wav").resolve()
    for r in data["rows"]:
        for kind in ("explanation", "residual", "map"):
            if r.get(kind):
                assert target(explain_dir, r[kind]).is_file() and explain_dir.resolve() in target(
                    explain_dir, r[kind]).parents
    failed = [r for r in data["rows"] if r["status"] != "ok"]
    assert [f["error"] for f in failed] == ["broken.wav: not an audio file"]
    assert "3 explanations of 3 clips, 1 failed input" in page.body_text


def test_every_link_is_relative_and_reaches_a_file(explain_dir: Path) -> None:
    page = report(explain_dir)
    clips = page.data["clips"]
    links = page.links() + [c["original"] for c in clips if c["original"]] + [
        r[k] for r in page.data["rows"] for k in ("explanation", "residual", "map") if r.get(k)]
    for link in links:
        if link.startswith(("#", "data:")):
            continue
        assert "://" not in link and not link.startswith("/"), link
        assert target(explain_dir, link).exists(), link
    outside = clips[0]["original"]  # the clip lies outside the folder: the link climbs out
    assert outside.startswith("../../clips/") and "%20%231.wav" in outside
    assert target(explain_dir, outside) == (explain_dir.parent.parent / "clips" / "dog bark #1.wav").resolve()
    assert clips[1]["original"] == "inside.wav"


def test_a_moved_folder_still_finds_its_files_and_missing_ones_get_no_player(explain_dir: Path) -> None:
    moved = explain_dir.parent / "moved"
    shutil.move(explain_dir, moved)  # results.csv keeps the old absolute paths
    page = report(moved)
    rows = [r for r in page.data["rows"] if r["status"] == "ok"]
    assert all(target(moved, r["explanation"]).is_file() for r in rows)
    assert not any(r["missing"] for r in rows)
    gone = target(moved, rows[0]["explanation"])
    gone.unlink()
    page = report(moved)
    row = next(r for r in page.data["rows"] if r["prompt"] == rows[0]["prompt"] and r["method"] == "lmaczs")
    assert row["explanation"] is None and len(row["missing"]) == 1
    assert row["missing"][0].endswith("explanation.wav")
    assert "1 explanation with files missing" in page.body_text


def test_paths_recorded_relative_to_the_runs_folder(tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "work"
    write_wav(work / "clips" / "a.wav")
    monkeypatch.chdir(work)
    row = explanation_row(Path("out/x"), "clips/a.wav", "bell")  # as `lmaczs explain clips/a.wav --out out/x`
    for k in ("wav", "residual_wav", "png"):  # recorded relative to the run's folder
        row[k] = os.path.relpath(row[k], work)
    write_results(work / "out" / "x", [row], provenance=False)
    monkeypatch.chdir(tmp_path)  # the report is made from elsewhere
    page = report(work / "out" / "x")
    clip, r = page.data["clips"][0], page.data["rows"][0]
    assert clip["original"] == "../../clips/a.wav"  # the run's folder was inferred from its outputs
    assert target(work / "out" / "x", r["explanation"]) == (work / "out" / "x" / Path(row["wav"]).relative_to(
        "out/x")).resolve()


def test_a_relative_clip_is_found_from_the_folder_the_run_recorded(tmp_path: Path, monkeypatch) -> None:
    work, out = tmp_path / "work", tmp_path / "elsewhere" / "out"
    write_wav(work / "a.wav")
    monkeypatch.chdir(work)
    write_results(out, [explanation_row(out, "a.wav", "x")])  # outputs absolute, the clip relative
    monkeypatch.chdir(tmp_path)
    assert report(out).data["clips"][0]["original"] is None  # negative control: nothing says where
    write_runs(out, [run_record("r1", cwd=str(work))])
    assert report(out).data["clips"][0]["original"] == "../../work/a.wav"


def test_an_original_that_cannot_be_found_is_a_note(explain_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "clips" / "dog bark #1.wav").unlink()
    page = report(explain_dir)
    assert page.data["clips"][0]["original"] is None and "not found" in page.data["clips"][0]["note"]
    assert "1 original clip cannot be played here" in page.body_text


def test_copy_originals_copies_outside_clips_once_and_converts_unplayable_formats(tmp_path: Path) -> None:
    out = tmp_path / "out"
    wav = write_wav(tmp_path / "a.wav")
    aiff = write_wav(tmp_path / "b.aiff", fmt="AIFF", subtype="PCM_16")
    write_results(out, [explanation_row(out, str(wav), "x"), explanation_row(out, str(aiff), "x")])
    plain = report(out)
    assert plain.data["clips"][1]["original"] is None
    assert "cannot play .aiff" in plain.data["clips"][1]["note"]
    page = report(out, copy_originals=True)
    copied = [target(out, c["original"]) for c in page.data["clips"]]
    assert all(p.parent == (out / "originals").resolve() for p in copied)
    assert copied[0].read_bytes() == wav.read_bytes()
    converted, rate = sf.read(str(copied[1]))
    original, _ = sf.read(str(aiff))
    assert copied[1].suffix == ".wav" and rate == 16000 and np.abs(converted - original).max() < 1e-4
    stamp = copied[0].stat().st_mtime_ns
    report(out, copy_originals=True)
    assert copied[0].stat().st_mtime_ns == stamp  # reused, not copied again


def test_hostile_prompts_and_names_are_text_not_markup(tmp_path: Path) -> None:
    out = tmp_path / "out"
    clip = write_wav(tmp_path / "<b>clip</b> 'q' \"d\".wav")
    write_results(out, [explanation_row(out, str(clip), p, rank=i + 1) for i, p in enumerate(HOSTILE)])
    write_runs(out, [run_record("r<1>", warnings=["<img src=x onerror=alert(1)> & more"])])
    html = (write_report(out)).read_text(encoding="utf-8")
    page = Page(html)
    assert [r["prompt"] for r in page.data["rows"]] == HOSTILE  # exact text survives the round trip
    assert page.data["clips"][0]["name"] == str(clip)
    assert len(page.scripts) == 2 and all(a.get("id") == "lmaczs-data" or not a for a, _ in page.scripts)
    assert not any(t == "img" and a.get("src") == "x" for t, a in page.tags)  # the warning is no tag
    assert "<img src=x onerror=alert(1)> & more" in page.body_text and "run r<1>" in page.body_text
    assert html.lower().count("<script") == 2 and "<img src=x" not in html  # only the page's own scripts


def test_page_json_cannot_close_its_script() -> None:
    text = page_json({"p": "</script><!-- & \u2028", "n": None})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"p": "</script><!-- & \u2028", "n": None}
    with pytest.raises(ValueError):
        page_json({"x": float("nan")})  # NaN would break JSON.parse: the gatherers must drop it


def test_the_csp_allows_exactly_the_inline_script_and_style(explain_dir: Path) -> None:
    html = write_report(explain_dir).read_text(encoding="utf-8")
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    code = [body for attrs, body in Page(html).scripts if not attrs]
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)

    def sha(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert sha(code[0]) in csp and sha(style) in csp and "default-src 'none'" in csp
    assert "http:" not in csp and "https:" not in csp and "connect-src" not in csp


def test_random_weights_banner_and_every_warning(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_results(out, [explanation_row(out, str(write_wav(tmp_path / "a.wav")), "x", run_id="r2",
                                        checkpoint="random")])
    write_runs(out, [run_record("r1", warnings=["first warning", "shared"]),
                     run_record("r2", random_weights=True, warnings=["small has RANDOM WEIGHTS", "shared"])])
    page = report(out)
    banner = [a for t, a in page.tags if a.get("id") == "random-weights"]
    assert banner and "RANDOM WEIGHTS" in page.body_text and "run r2 (explain, model small)" in page.body_text
    for w in ("first warning", "small has RANDOM WEIGHTS"):
        assert w in page.body_text
    assert page.body_text.count("shared (run") == 2  # one line per run that gave it
    assert "run r2 — explain" in page.body_text
    write_runs(out, [run_record("r1"), run_record("r2")])  # negative control: trained weights
    write_results(out, [explanation_row(out, str(tmp_path / "a.wav"), "x", run_id="r2",
                                        checkpoint="bundled")])
    page = report(out)
    assert not any(a.get("id") == "random-weights" for _, a in page.tags) and "RANDOM" not in page.body_text


def test_random_checkpoint_rows_show_the_banner_without_run_records(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_results(out, [explanation_row(out, str(write_wav(tmp_path / "a.wav")), "x", checkpoint="random")])
    page = report(out)
    assert any(a.get("id") == "random-weights" for _, a in page.tags)
    assert "No run record (run.json)" in page.body_text


def test_an_old_folder_without_provenance_columns(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_results(out, [explanation_row(out, str(write_wav(tmp_path / "a.wav")), "x")], provenance=False)
    page = report(out)
    r = page.data["rows"][0]
    assert r["run_id"] == "" and r["faithful"] is None and r["similarity"] == 0.5
    assert "No run record (run.json)" in page.body_text


def test_a_bad_runs_jsonl_line_is_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_runs(out, [run_record("r1")])
    with (out / "runs.jsonl").open("a") as f:
        f.write('{"run_id": "half\n')
    page = report(out)
    assert "runs.jsonl line 2 is not a run record" in page.body_text and "run r1" in page.body_text


def _table(page: Page, html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    body = body.replace("<thead>", "").replace("<tbody>", "")
    return [[" ".join(Page(c).body_text.split()) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_evaluate_summary_table_with_confidence_intervals(tmp_path: Path) -> None:
    rows = write_evaluate(tmp_path)
    html = write_report(tmp_path).read_text(encoding="utf-8")
    page = Page(html)
    table = _table(page, html, "summary")
    assert table[0] == ["method", "condition", "AI", "AD", "FF", "n"]
    assert [line[:2] for line in table[1:]] == [[r["method"], r["condition"]] for r in rows[::3]]
    # hand-computed from the fixture: mean 10 i + j + 0.123456, CI [mean - 1.5, mean + 2.25];
    # 3 decimals below 10, 1 from 10 on
    assert table[1][2:] == ["0.123 [-1.377, 2.373]", "1.123 [-0.377, 3.373]", "2.123 [0.623, 4.373]", "40"]
    assert table[4][2:] == ["30.1 [28.6, 32.4]", "31.1 [29.6, 33.4]", "32.1 [30.6, 34.4]", "40"]
    assert any(t == "img" and a.get("src") == "mask_vs_similarity.png" for t, a in page.tags)
    assert page.data is None  # no explanations, no script data


def test_sanity_check_verdicts_curve_and_plots(tmp_path: Path) -> None:
    write_sanity(tmp_path)
    html = write_report(tmp_path).read_text(encoding="utf-8")
    page = Page(html)
    text = page.body_text
    assert "lmaczs: passed the randomisation test (SSIM after the last block 0.12, must be <= 0.25)" in text
    assert "gradcam: FAILED the randomisation test (SSIM after the last block 0.80, must be <= 0.25)" in text
    classes = [a.get("class") for t, a in page.tags if t == "p" and "verdict" in a.get("class", "")]
    assert classes == ["verdict pass", "verdict fail"]
    curve = _table(page, html, "ssim")  # one line per step, one column per method
    assert curve == [["step", "randomised", "lmaczs", "gradcam"],
                     ["0", "intact", "1.000 [0.950, 1.000]", "1.000 [0.950, 1.000]"],
                     ["1", "stage1", "0.610 [0.560, 0.660]", "0.900 [0.850, 0.950]"],
                     ["2", "stage2", "0.120 [0.070, 0.170]", "0.800 [0.750, 0.850]"]]
    assert _table(page, html, "prompts")[1:] == [["lmaczs", "0.400", "0.700"], ["gradcam", "–", "–"]]
    # how often the model hears no evidence, from the intact model to the last step; once per page
    assert text.count("the explained prompt at least as well as the clip on 0 % of clips with the intact "
                      "model and 92 % after the last block") == 1
    # the last step split by evidence, under the method's verdict (gradcam's summary has none)
    assert text.count("after the last block, where the randomised model still hears the prompt (4 clips): "
                      "mask mean 0.61 x intact (median), rank correlation 0.05 (margin over chance -0.10 to "
                      "0.12, 95 % CI); where it hears nothing (46 clips): mask mean 0.02 x intact") == 1
    from lmaczs_cli.report.studies import evidence_line

    assert evidence_line([{"method": "older run"}]) is None  # summary.json written before the curve
    assert {a.get("src") for t, a in page.tags if t == "img"} == {"ssim.png", "mask_vs_similarity.png"}


def test_a_folder_holding_every_kind_of_run(explain_dir: Path) -> None:
    write_evaluate(explain_dir)
    write_sanity(explain_dir)
    page = report(explain_dir)
    ids = {a.get("id") for _, a in page.tags}
    assert {"explanations", "evaluation", "sanity", "provenance", "files", "filters"} <= ids
    assert {r["run_id"] for r in page.data["rows"] if r["status"] == "ok"} == {"r1", "r2"}
    assert "run r2 — baseline" in page.body_text and "(latest)" in page.body_text
    files = [a["href"] for t, a in page.tags
             if t == "a" and a.get("href", "").endswith((".csv", ".json", ".jsonl"))]
    assert {"results.csv", "summary.csv", "summary.json", "ssim.csv", "run.json", "runs.jsonl"} <= set(files)


def test_nothing_to_report_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing to report"):
        write_report(tmp_path)
    with pytest.raises(UsageError, match="no such folder"):
        write_report(tmp_path / "missing")
    assert not (tmp_path / "report.html").exists()


def test_the_report_command(explain_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(explain_dir)])
    assert res.exit_code == 0 and res.stdout.strip() == str(explain_dir / "report.html")
    assert (explain_dir / "report.html").is_file()
    res = runner.invoke(app, ["report", str(explain_dir), "--json"])
    assert json.loads(res.stdout) == {"report": str(explain_dir / "report.html")}
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["report", str(empty)])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.strip().count("\n") == 0 and "nothing to report" in res.stderr


def test_report_html_is_replaced_atomically(explain_dir: Path) -> None:
    first = write_report(explain_dir)
    inode = os.stat(first).st_ino
    write_report(explain_dir)
    assert os.stat(first).st_ino != inode  # a new file renamed over the old one, never half-written
    assert not [p for p in explain_dir.iterdir() if ".part" in p.name]  # no temp file left behind


def test_a_file_instead_of_a_folder_names_the_folder(explain_dir: Path) -> None:
    folder = re.escape(str(explain_dir))
    with pytest.raises(UsageError, match=f"is a file; give the run's folder \\({folder}\\)"):
        write_report(explain_dir / "results.csv")


def test_also_report_writes_the_page_or_warns(explain_dir: Path, tmp_path: Path, capsys) -> None:
    from lmaczs_cli.cli.common import Shared
    from lmaczs_cli.cli.report import also_report

    shared = Shared(None, quiet=False, json_out=False, debug=False)
    also_report(False, explain_dir, shared)
    assert not (explain_dir / "report.html").exists()
    also_report(True, explain_dir, shared)
    assert (explain_dir / "report.html").is_file()
    assert capsys.readouterr().err.strip() == f"wrote {explain_dir / 'report.html'}"
    also_report(True, tmp_path / "empty-run", shared)  # a failed run that wrote nothing: a warning only
    assert "lmaczs: warning: report.html not written:" in capsys.readouterr().err


def test_the_page_is_read_and_written_under_the_folders_report_lock(explain_dir: Path) -> None:
    """Runs finishing together into one folder write their pages one at a time, each after its own
    rows are in results.csv, so the page written last holds every run's rows."""
    import threading

    from lmaczs_cli.outdir import locked

    done = threading.Event()
    writer = threading.Thread(target=lambda: (write_report(explain_dir), done.set()))
    with locked(explain_dir / ".report.html.lock"):  # another run is writing its page
        writer.start()
        assert not done.wait(0.5) and not (explain_dir / "report.html").exists()
    writer.join(30)
    assert done.is_set() and (explain_dir / "report.html").is_file()
