"""``lmaczs download dataset``: fake archives in each set's real layout, served from 127.0.0.1.

Each catalogue entry keeps its real shape (file names, kinds, which digests are the
publisher's) and is pointed at the local server with the fake's size and checksums.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import http.server
import io
import re
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
import tests.test_explain  # noqa: F401  (registers the "ones" explainer)
from lmaczs_cli.cli.app import app
from lmaczs_cli.data.clotho import load_clotho
from lmaczs_cli.data.us8k import load_us8k
from lmaczs_cli.downloads.datasets import catalogue, install
from tests.fixtures_data import (
    CLOTHO_FILES,
    ESC50_ROWS,
    US8K_ROWS,
    clotho_captions,
    make_clotho,
    make_esc50,
    make_us8k,
)

SPLITS = ("development", "validation", "evaluation")
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/<behaviour>/<file>``: ok, drop-once, drop-always (send half, hang up), corrupt, missing."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        kind, name = self.path.strip("/").split("/", 1)
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))  # type: ignore[attr-defined]
        data = srv.files.get(name)  # type: ignore[attr-defined]
        if kind == "missing" or data is None:
            self.send_error(404)
            return
        if kind == "corrupt":
            data = _corrupt(data)
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        n_req = sum(1 for p, _ in srv.requests if p == self.path)  # type: ignore[attr-defined]
        if kind == "drop-always" or (kind == "drop-once" and n_req == 1):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _corrupt(data: bytes) -> bytes:
    """One flipped byte in the middle (inside a member's compressed data for our archives)."""
    out = bytearray(data)
    out[len(out) // 2] ^= 0xFF
    return bytes(out)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- fake archives in the publishers' layouts ----------------------------------------------


def _zip(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """Zip ``folder``'s tree (paths relative to its parent), deterministically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            z.writestr(zipfile.ZipInfo(str(f.relative_to(folder.parent)), FIXED_TIME), f.read_bytes())
        for name, data in (extra or {}).items():
            z.writestr(zipfile.ZipInfo(name, FIXED_TIME), data)
    return buf.getvalue()


def _targz(*folders: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for folder in folders:
            t.add(folder, arcname=folder.name)
    return buf.getvalue()


def _7z(folder: Path) -> bytes:
    import py7zr

    path = folder.parent / f"{folder.name}.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        z.writeall(folder, folder.name)
    return path.read_bytes()


def _esc50_files(tmp: Path) -> dict[str, bytes]:
    top = make_esc50(tmp / "esc50" / f"ESC-50-{catalogue.ESC50_COMMIT}")
    (top / "LICENSE").write_text("per-clip attributions\n")
    (top / "README.md").write_text("ESC-50\n")
    (top / "esc50.gif").write_bytes(b"GIF89a")
    (top / "tests").mkdir()
    (top / "tests" / "test_dataset.py").write_text("pass\n")
    return {catalogue.ESC50.archives[0].name: _zip(top)}


def _us8k_files(tmp: Path) -> dict[str, bytes]:
    top = make_us8k(tmp / "us8k" / "UrbanSound8K")
    (top / "FREESOUNDCREDITS.txt").write_text("credits\n")
    (top / "UrbanSound8K_README.txt").write_text("readme\n")
    return {"UrbanSound8K.tar.gz": _targz(top)}


def _clotho_files(tmp: Path) -> dict[str, bytes]:
    files = {}
    for split in SPLITS:
        root = make_clotho(tmp / "clotho" / split, split)
        files[f"clotho_audio_{split}.7z"] = _7z(root / split)
        files[f"clotho_captions_{split}.csv"] = (root / f"clotho_captions_{split}.csv").read_bytes()
        rows = "".join(f'"{n}",keywords,1,https://freesound.org/s/1,"[0, 1]",someone,CC0\n'
                       for n in CLOTHO_FILES)
        files[f"clotho_metadata_{split}.csv"] = (
            "file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license\n" + rows
        ).encode()
    return files


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    tmp = tmp_path_factory.mktemp("fake-archives")
    return {"esc50": _esc50_files(tmp), "us8k": _us8k_files(tmp)}


@pytest.fixture(scope="module")
def clotho_fakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    pytest.importorskip("py7zr")  # the `data` extra (also in `test`)
    return _clotho_files(tmp_path_factory.mktemp("fake-clotho"))


@pytest.fixture(scope="module")
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests = []  # type: ignore[attr-defined]
    srv.files = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def serve(server, fakes, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """``serve(name, behaviour="ok", files=None, **spec_changes)``: point the catalogue entry at
    the local server, with the size and checksums of the fake files (or of ``files``)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(install, "BACKOFF", 0.0)
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def _serve(name: str, behaviour: str = "ok", files: dict[str, bytes] | None = None, **changes):
        if files is not None:
            data = files
        else:
            data = request.getfixturevalue("clotho_fakes") if name == "clotho" else fakes[name]
        server.files.update(data)
        server.requests.clear()
        spec = {"esc50": catalogue.ESC50, "us8k": catalogue.US8K, "clotho": catalogue.CLOTHO}[name]
        archives = []
        for a in spec.archives:
            blob = data[a.name]
            digest = {"md5": _md5(blob)} if a.md5 else {"sha256": _sha256(blob)}
            url = f"{base}/{behaviour}/{a.name}"
            archives.append(dataclasses.replace(a, url=url, size=len(blob), **digest))
        fields = {"archives": tuple(archives), "clips": _fake_clips(name), "file_md5": _fake_md5(name, data)}
        monkeypatch.setitem(catalogue.DATASETS, name, dataclasses.replace(spec, **{**fields, **changes}))
        return catalogue.DATASETS[name]

    return _serve


def _fake_clips(name: str) -> dict[str | None, int]:
    return {"esc50": {None: len(ESC50_ROWS)}, "us8k": {None: len(US8K_ROWS)},
            "clotho": {s: len(CLOTHO_FILES) for s in SPLITS}}[name]


def _fake_md5(name: str, files: dict[str, bytes]) -> dict[str, str]:
    if name != "esc50":
        return {}
    with zipfile.ZipFile(io.BytesIO(next(iter(files.values())))) as z:
        csv_name = next((n for n in z.namelist() if n.endswith("meta/esc50.csv")), None)
        return {"meta/esc50.csv": _md5(z.read(csv_name))} if csv_name else {}


def _run(args: list[str], tmp_path: Path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    return CliRunner().invoke(app, ["download", "dataset", *args], env=env)


def _leftovers(dest: Path) -> list[str]:
    """Everything next to ``dest`` but ``dest`` itself (download folders, temporary folders)."""
    return sorted(p.name for p in dest.parent.iterdir() if p != dest) if dest.parent.exists() else []


# -- the finished folder is what the loaders and `lmaczs evaluate` read ----------------------


@pytest.mark.slow  # `lmaczs evaluate` on 10 clips (the download itself takes well under a second)
def test_esc50_download_is_read_by_evaluate(serve, server, tmp_path: Path) -> None:
    serve("esc50")
    res = _run(["esc50", "-q"], tmp_path)
    dest = tmp_path / "cache" / "lmaczs" / "data" / "esc50"
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(dest)
    assert "CC BY-NC 3.0" in res.stderr and "Piczak" in res.stderr  # licence, even with -q
    assert sorted(p.name for p in dest.iterdir()) == [
        ".lmaczs-dataset.json", "ATTRIBUTION.txt", "LICENSE", "README.md", "audio", "meta"]
    assert len(list((dest / "audio").glob("*.wav"))) == len(ESC50_ROWS)
    assert "CC BY-NC 3.0" in (dest / "ATTRIBUTION.txt").read_text()
    assert _leftovers(dest) == []
    out = tmp_path / "eval"
    ev = CliRunner().invoke(app, ["evaluate", "--dataset", "esc50", "--data-root", res.stdout.strip(),
                                  "--method", "ones", "--condition", "clean", "--out", str(out),
                                  "--clap", "fake", "--device", "cpu", "--quiet"])
    assert ev.exit_code == 0, ev.output
    with (out / "samples.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["clip"]).name for r in rows) == sorted(r[0] for r in ESC50_ROWS)
    assert all(r["status"] == "ok" for r in rows)
    server.requests.clear()
    again = _run(["esc50"], tmp_path)
    assert again.exit_code == 0 and "already present" in again.stderr
    assert again.stdout.strip() == str(dest) and server.requests == []


def test_us8k_tar_keeps_every_file_as_recorded(serve, tmp_path: Path) -> None:
    serve("us8k")
    dest = tmp_path / "sets" / "UrbanSound8K"
    res = _run(["us8k", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(dest)
    report = load_us8k(dest)
    assert len(report.items) == len(US8K_ROWS) and report.missing == []
    for name, fold, _cid, _cls, sr, ch, subtype, _sec in US8K_ROWS:
        info = sf.info(str(dest / "audio" / f"fold{fold}" / name))
        assert (info.samplerate, info.channels, info.subtype) == (sr, ch, subtype)
    assert [it.label for it in report.items] == [r[3].replace("_", " ") for r in US8K_ROWS]
    assert (dest / "FREESOUNDCREDITS.txt").is_file() and _leftovers(dest) == []


def test_clotho_7z_archives_and_csvs_are_read_by_the_loader(serve, tmp_path: Path) -> None:
    serve("clotho")
    dest = tmp_path / "clotho"
    res = _run(["clotho", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert "Tampere University" in res.stderr
    for split in SPLITS:
        report = load_clotho(dest, split)
        assert report.missing == [] and len(report.items) == len(CLOTHO_FILES)
        by_name = {it.meta["file_name"]: it.texts for it in report.items}
        assert by_name == {n: tuple(clotho_captions(n)) for n in CLOTHO_FILES}  # names with , é 中 survive
        assert (dest / f"clotho_metadata_{split}.csv").is_file()
    assert _leftovers(dest) == []


# -- refusals: nothing half-made stays ------------------------------------------------------


@pytest.mark.parametrize(("name", "digest"), [("us8k", "MD5"), ("esc50", "SHA-256")])
def test_corrupted_archive_is_refused_with_both_checksums(name: str, digest: str, serve, fakes,
                                                          tmp_path: Path) -> None:
    spec = serve(name, "corrupt")
    archive = spec.archives[0]
    blob = fakes[name][archive.name]
    expected, got = (_md5(blob), _md5(_corrupt(blob))) if digest == "MD5" else \
        (_sha256(blob), _sha256(_corrupt(blob)))
    dest = tmp_path / "d" / name
    res = _run([name, "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("lmaczs: error:")]
    assert len(errors) == 1
    want = f"lmaczs: error: {archive.name}: {digest} mismatch (expected {expected}, got {got})"
    assert errors[0].startswith(want)
    assert not dest.exists() and _leftovers(dest) == []


def test_rebuilt_github_archive_is_accepted_on_its_content(serve, tmp_path: Path) -> None:
    spec = serve("esc50")
    a = spec.archives[0]
    serve("esc50", archives=(dataclasses.replace(a, size=None, sha256="0" * 64),))
    dest = tmp_path / "esc50"
    res = _run(["esc50", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert f"SHA-256 mismatch (expected {'0' * 64}, got " in res.stderr
    assert "GitHub rebuilt the archive" in res.stderr
    assert (dest / "meta" / "esc50.csv").is_file()


def test_rebuilt_archive_with_other_content_is_refused(serve, tmp_path: Path) -> None:
    spec = serve("esc50")
    serve("esc50", archives=(dataclasses.replace(spec.archives[0], size=None, sha256="0" * 64),),
          file_md5={"meta/esc50.csv": "f" * 32})
    dest = tmp_path / "esc50"
    res = _run(["esc50", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 1
    assert "SHA-256 mismatch (expected 000" in res.stderr
    assert f"meta/esc50.csv: MD5 mismatch (expected {'f' * 32}, got " in res.stderr
    assert not dest.exists() and _leftovers(dest) == []


def _wrong_layouts(tmp: Path) -> dict[str, tuple[bytes, str]]:
    """us8k archives that are not UrbanSound8K as its loader reads it, and the error each gives."""
    no_meta = make_us8k(tmp / "a" / "UrbanSound8K")
    (no_meta / "metadata" / "UrbanSound8K.csv").rename(no_meta / "UrbanSound8K.csv")
    short = make_us8k(tmp / "b" / "UrbanSound8K", missing=(US8K_ROWS[0][0],))
    two = [make_us8k(tmp / "c" / "UrbanSound8K"), tmp / "c" / "extra"]
    two[1].mkdir()
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as t:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        t.addfile(info, io.BytesIO(b"evil"))
    return {
        "no-metadata": (_targz(no_meta), "does not have us8k's layout: metadata/UrbanSound8K.csv not found"),
        "missing-clip": (_targz(short), f"us8k: 1 listed clips are not in the archive (first: audio/fold1/"
                                        f"{US8K_ROWS[0][0]})"),
        "two-folders": (_targz(*two), "expected one top-level folder, found UrbanSound8K, extra"),
        "escaping": (evil.getvalue(), "member '../evil.txt' would be written outside the folder"),
    }


@pytest.mark.parametrize("case", ["no-metadata", "missing-clip", "two-folders", "escaping"])
def test_archive_not_in_the_expected_layout_is_refused(case: str, serve, tmp_path: Path) -> None:
    blob, message = _wrong_layouts(tmp_path / "src")[case]
    serve("us8k", files={"UrbanSound8K.tar.gz": blob})
    dest = tmp_path / "d" / "us8k"
    res = _run(["us8k", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 1, res.output
    assert message in res.stderr
    assert not dest.exists() and _leftovers(dest) == []
    assert not (tmp_path / "d" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


# -- interrupted transfers resume ---------------------------------------------------------


def test_interrupted_transfer_resumes_on_the_next_run(serve, server, fakes, tmp_path: Path) -> None:
    size = len(fakes["us8k"]["UrbanSound8K.tar.gz"])
    serve("us8k", "drop-always")
    dest = tmp_path / "us8k"
    res = _run(["us8k", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 1
    assert re.search(rf"interrupted after \d+ of {size} bytes.*run the same command again", res.stderr)
    part = tmp_path / "us8k.download" / "UrbanSound8K.tar.gz.part"
    have = part.stat().st_size
    assert 0 < have < size and not dest.exists()
    serve("us8k", "ok")
    res = _run(["us8k", "--dest", str(dest), "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert server.requests == [("/ok/UrbanSound8K.tar.gz", f"bytes={have}-")]
    assert len(load_us8k(dest).items) == len(US8K_ROWS) and _leftovers(dest) == []


def test_truncated_transfer_is_resumed_within_one_run(serve, server, tmp_path: Path) -> None:
    serve("esc50", "drop-once")
    res = _run(["esc50", "--dest", str(tmp_path / "esc50"), "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    ranges = [r for _, r in server.requests]
    assert ranges[0] is None and re.fullmatch(r"bytes=\d+-", ranges[1]) and len(ranges) == 2


# -- the folder, the options ----------------------------------------------------------------


def test_folders_lmaczs_did_not_make_are_left_alone(serve, server, tmp_path: Path) -> None:
    serve("esc50")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    for extra in ([], ["--force"]):
        res = _run(["esc50", "--dest", str(dest), *extra], tmp_path)
        assert res.exit_code == 2 and "was not made by `lmaczs download dataset`" in res.stderr
    assert (dest / "notes.txt").read_text() == "keep me" and server.requests == []


def test_force_replaces_our_own_folder_and_other_sets_are_refused(serve, server, tmp_path: Path) -> None:
    serve("esc50")
    dest = tmp_path / "set"
    assert _run(["esc50", "--dest", str(dest), "-q"], tmp_path).exit_code == 0
    (dest / "audio" / ESC50_ROWS[0][0]).unlink()  # damage it
    serve("us8k")
    other = _run(["us8k", "--dest", str(dest)], tmp_path)
    assert other.exit_code == 2 and "holds esc50" in other.stderr and server.requests == []
    serve("esc50")
    res = _run(["esc50", "--dest", str(dest), "--force", "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert len(server.requests) == 1 and (dest / "audio" / ESC50_ROWS[0][0]).is_file()
    assert _leftovers(dest) == []


def test_missing_py7zr_is_reported_before_any_download(serve, server, monkeypatch, tmp_path) -> None:
    serve("clotho", files={a.name: b"never fetched" for a in catalogue.CLOTHO.archives})
    monkeypatch.setitem(sys.modules, "py7zr", None)  # import py7zr -> ImportError
    dest = tmp_path / "d" / "clotho"
    res = _run(["clotho", "--dest", str(dest)], tmp_path)
    assert res.exit_code == 2 and "pip install py7zr" in res.stderr
    assert server.requests == [] and not dest.parent.exists()


def test_list_and_bad_names(tmp_path: Path) -> None:
    res = _run(["--list"], tmp_path)
    assert res.exit_code == 0
    lines = res.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["esc50", "us8k", "clotho"]
    assert all(re.search(r"\t[\d.]+ (MB|GB)\t", line) and "licence: " in line for line in lines)
    bad = _run(["audiocaps"], tmp_path)
    assert bad.exit_code == 2 and "esc50, us8k, clotho" in bad.stderr and "AudioCaps" in bad.stderr
    assert _run([], tmp_path).exit_code == 2


def test_catalogue_points_at_the_publishers() -> None:
    esc50, us8k, clotho = (catalogue.DATASETS[n] for n in ("esc50", "us8k", "clotho"))
    assert esc50.archives[0].url.endswith(f"/karolpiczak/ESC-50/archive/{catalogue.ESC50_COMMIT}.zip")
    assert not esc50.archives[0].published and re.fullmatch(r"[0-9a-f]{32}", esc50.file_md5["meta/esc50.csv"])
    assert us8k.archives[0].url.startswith("https://zenodo.org/records/1203745/")
    assert {a.url.split("/")[4] for a in clotho.archives} == {"4783391"}
    for spec in (us8k, clotho):  # Zenodo files: the publisher's MD5 decides
        assert all(a.published and re.fullmatch(r"[0-9a-f]{32}", a.md5 or "") for a in spec.archives)
    assert sum(clotho.clips.values()) == 5929 and us8k.clips == {None: 8732} and esc50.clips == {None: 2000}
    assert {a.kind for a in clotho.archives} == {"7z", "file"}
