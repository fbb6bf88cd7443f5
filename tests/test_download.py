"""``lmaczs download``: verified, resumable, atomic downloads against a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.downloads import cache
from lmaczs_cli.downloads import models as catalogue
from lmaczs_cli.downloads.fetch import DownloadError, download

PAYLOAD = bytes((i * 7919 + 13) % 251 for i in range(200_000))
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Paths choose a behaviour: ok, drop-once, drop-always, corrupt, norange, redirect..."""

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        kind = self.path.strip("/").split("/")[0]
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))  # type: ignore[attr-defined]
        data = PAYLOAD
        if kind == "missing":
            self.send_error(404)
            return
        if kind in ("redirect", "redirect-badsha"):
            etag = SHA if kind == "redirect" else "0" * 64
            self.send_response(302)
            self.send_header("Location", "/ok/file")
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(PAYLOAD)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "corrupt":
            data = bytearray(PAYLOAD)
            data[1234] ^= 0xFF
            data = bytes(data)
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and kind != "norange":
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
        drop = kind == "drop-always" or (kind == "drop-once" and n_req == 1)
        if drop:  # promise the whole body, send a part, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def base(server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server.requests.clear()
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_download_verifies_and_renames(base: str, server, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    dest = download(f"{base}/ok/file", tmp_path / "m.pt", size=len(PAYLOAD), sha256=SHA,
                    chunk=65536, progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "m.pt.part").exists()
    assert server.requests == [("/ok/file", None)]
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_resume_from_partial_file_uses_range(base: str, server, tmp_path: Path) -> None:
    (tmp_path / "m.pt.part").write_bytes(PAYLOAD[:1000])
    download(f"{base}/ok/file", tmp_path / "m.pt", sha256=SHA)
    assert server.requests == [("/ok/file", "bytes=1000-")]
    assert (tmp_path / "m.pt").read_bytes() == PAYLOAD


def test_truncated_transfer_is_resumed_automatically(base: str, server, tmp_path: Path) -> None:
    download(f"{base}/drop-once/file", tmp_path / "m.pt", sha256=SHA, backoff=0)
    assert [r for _, r in server.requests] == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert (tmp_path / "m.pt").read_bytes() == PAYLOAD


def test_truncated_transfer_keeps_part_for_next_run(base: str, server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"interrupted after \d+ of 200000 bytes.*resume"):
        download(f"{base}/drop-always/file", tmp_path / "m.pt", size=len(PAYLOAD), retries=1,
                 backoff=0)
    part = tmp_path / "m.pt.part"
    assert not (tmp_path / "m.pt").exists()
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD) and PAYLOAD.startswith(part.read_bytes())
    server.requests.clear()
    download(f"{base}/ok/file", tmp_path / "m.pt", size=len(PAYLOAD), sha256=SHA)
    assert server.requests == [("/ok/file", f"bytes={have}-")]
    assert (tmp_path / "m.pt").read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_no_file(base: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="SHA-256 mismatch .*nothing was saved"):
        download(f"{base}/corrupt/file", tmp_path / "m.pt", size=len(PAYLOAD), sha256=SHA)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_leaves_no_file(base: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="got 200000 bytes, expected 200001"):
        download(f"{base}/ok/file", tmp_path / "m.pt", size=len(PAYLOAD) + 1)
    assert list(tmp_path.iterdir()) == []


def test_server_ignoring_range_restarts_cleanly(base: str, server, tmp_path: Path) -> None:
    (tmp_path / "m.pt.part").write_bytes(b"garbage" * 10)
    download(f"{base}/norange/file", tmp_path / "m.pt", sha256=SHA)
    assert server.requests == [("/norange/file", "bytes=70-")]
    assert (tmp_path / "m.pt").read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_without_refetching(base: str, tmp_path: Path) -> None:
    (tmp_path / "m.pt.part").write_bytes(PAYLOAD)
    download(f"{base}/ok/file", tmp_path / "m.pt", sha256=SHA)  # server answers 416
    assert (tmp_path / "m.pt").read_bytes() == PAYLOAD


def test_huggingface_linked_headers_supply_the_checksum(base: str, tmp_path: Path) -> None:
    download(f"{base}/redirect/file", tmp_path / "a.pt")
    assert (tmp_path / "a.pt").read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        download(f"{base}/redirect-badsha/file", tmp_path / "b.pt")
    assert not (tmp_path / "b.pt").exists() and not (tmp_path / "b.pt.part").exists()


def test_existing_file_is_kept_unless_forced(base: str, server, tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"old")
    download(f"{base}/ok/file", tmp_path / "m.pt")
    assert (tmp_path / "m.pt").read_bytes() == b"old" and server.requests == []
    download(f"{base}/ok/file", tmp_path / "m.pt", force=True, sha256=SHA)
    assert (tmp_path / "m.pt").read_bytes() == PAYLOAD


def test_http_error_is_one_line(base: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"^HTTP 404 .* for http://127\.0\.0\.1:\d+/missing/x$"):
        download(f"{base}/missing/x", tmp_path / "m.pt")


def test_unreachable_server_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"^download of http://127\.0\.0\.1:\d+/x failed \("):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "m.pt", retries=1, backoff=0)
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.clap_cache_dir() == tmp_path / "xdg" / "lmaczs" / "clap"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.clap_cache_dir() == tmp_path / "home" / ".cache" / "lmaczs" / "clap"


def test_catalogue_pins_the_default_checkpoint() -> None:
    art = catalogue.clap_artifact("630k-audioset-best.pt")
    assert art.url == "https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-best.pt"
    assert art.size == 1_863_587_645 and art.sha256 is not None and len(art.sha256) == 64
    fusion = catalogue.clap_artifact("laion-htsat-tiny-fusion")  # the laion_clap package's own URL
    assert fusion.name == "630k-audioset-fusion-best.pt"
    assert fusion.url == "https://huggingface.co/lukewys/laion_clap/resolve/main/630k-audioset-fusion-best.pt"
    from lmaczs_cli.cli.download import DEFAULT_NAME
    from lmaczs_cli.models.laion.checkpoint import DEFAULT_CHECKPOINTS

    assert DEFAULT_NAME == catalogue.default_clap_checkpoint() == DEFAULT_CHECKPOINTS["HTSAT-tiny"]
    assert set(DEFAULT_CHECKPOINTS.values()) <= set(catalogue.clap_checkpoints())


# -- the CLI command ------------------------------------------------------------------


def _run(args: list[str], tmp_path: Path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "NO_COLOR": "1"}
    return CliRunner().invoke(app, ["download", *args], env=env)


def test_cli_downloads_into_xdg_cache(base: str, tmp_path: Path) -> None:
    res = _run(["clap", "630k-best.pt", "--url", f"{base}/ok/file", "--sha256", SHA, "-q"],
               tmp_path)
    dest = tmp_path / "lmaczs" / "clap" / "630k-best.pt"
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(dest)
    assert dest.read_bytes() == PAYLOAD
    again = _run(["clap", "630k-best.pt", "--url", f"{base}/ok/file", "-q"], tmp_path)
    assert again.exit_code == 0 and "already present" in again.stderr


def test_cli_checksum_mismatch_exit_1_one_line(base: str, tmp_path: Path) -> None:
    res = _run(["clap", "x.pt", "--url", f"{base}/corrupt/file", "--sha256", SHA, "-q"], tmp_path)
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmaczs: error: x.pt: SHA-256 mismatch")
    assert not (tmp_path / "lmaczs" / "clap" / "x.pt").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("nope.pt", "unknown checkpoint 'nope.pt'"),
     ("../evil.pt", "must be a plain file name")],
)
def test_cli_refuses_bad_names_exit_2(name: str, message: str, tmp_path: Path) -> None:
    res = _run(["clap", name], tmp_path)
    assert res.exit_code == 2 and message in res.stderr


def test_cli_lists_the_fusion_checkpoints_offline(tmp_path: Path) -> None:
    res = _run(["clap", "--list"], tmp_path)
    assert res.exit_code == 0, res.output
    lines = {line.split("\t")[0]: line for line in res.stdout.splitlines() if "\t" in line}
    assert "laion-htsat-tiny-fusion" in lines["630k-audioset-fusion-best.pt"]
    assert "630k-fusion-best.pt" in lines


def test_cli_tokenizer_command(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from lmaczs_cli.models import families

    files = tuple(catalogue.Artifact(n, f"{base}/ok/{n}") for n in ("vocab.json", "merges.txt"))
    laion = families.family_of("laion-htsat-tiny")
    monkeypatch.setattr(families, "_FAMILIES", dict(families._FAMILIES))
    families.register_family(dataclasses.replace(laion, tokenizers={"roberta-base": files}))
    res = _run(["tokenizer", "-q"], tmp_path)
    folder = tmp_path / "lmaczs" / "tokenizers" / "roberta-base"
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(folder)
    assert (folder / "vocab.json").read_bytes() == PAYLOAD == (folder / "merges.txt").read_bytes()
