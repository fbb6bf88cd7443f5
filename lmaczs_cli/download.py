"""Explicit, resumable, verified downloads (stdlib ``urllib`` only).

Nothing in lmaczs touches the network except the ``lmaczs download`` command,
which calls :func:`download`. Files land in the XDG cache
(``$XDG_CACHE_HOME/lmaczs/<kind>/`` else ``~/.cache/lmaczs/<kind>/``):

- bytes are written to ``<name>.part`` (locked against a second writer);
- an interrupted transfer resumes from the ``.part`` file with an HTTP
  ``Range`` request (automatically a few times, then on the next run);
- the finished file is checked against the expected size and SHA-256 (from the
  catalogue below, else from the Hugging Face ``X-Linked-Size`` /
  ``X-Linked-Etag`` headers of the redirect, else against ``Content-Length``),
  and against an MD5 where that is what the publisher gives (Zenodo);
- only a verified file is renamed (atomically) to its final name; a corrupt
  one is deleted, never left at the final path.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lmaczs_cli import __version__
from lmaczs_cli.errors import LmaczsError, UsageError

HF_LAION = "https://huggingface.co/lukewys/laion_clap/resolve/main/"
HF_ROBERTA = "https://huggingface.co/FacebookAI/roberta-base/resolve/main/"
HF_MSCLAP = "https://huggingface.co/microsoft/msclap/resolve/main/"
HF_GPT2 = "https://huggingface.co/openai-community/gpt2/resolve/main/"


@dataclass(frozen=True)
class Artifact:
    """A downloadable file: where from, and what it must look like."""

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    description: str = ""


#: Non-fusion LAION-CLAP checkpoints (fusion ones are not supported by lmaczs) and the
#: Microsoft CLAP ones (Hugging Face ``microsoft/msclap``; the same files are published
#: on Zenodo, records 7312125 (2022) and 8378278 (2022, 2023), usable with ``--url``).
#: Size and SHA-256 are pinned where independently known; for the others the
#: Hugging Face headers (X-Linked-Size, X-Linked-Etag) give them at download time.
CLAP_CHECKPOINTS: dict[str, Artifact] = {
    a.name: a
    for a in (
        Artifact(
            "630k-audioset-best.pt",
            HF_LAION + "630k-audioset-best.pt",
            1_863_587_645,
            "8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
            "HTSAT-tiny, LAION-Audio-630K + AudioSet (default; laion-htsat-tiny)",
        ),
        Artifact(
            "630k-best.pt",
            HF_LAION + "630k-best.pt",
            description="HTSAT-tiny, LAION-Audio-630K (laion-htsat-tiny)",
        ),
        Artifact(
            "music_speech_audioset_epoch_15_esc_89.98.pt",
            HF_LAION + "music_speech_audioset_epoch_15_esc_89.98.pt",
            description="HTSAT-base, music + speech + AudioSet (default for laion-htsat-base)",
        ),
        Artifact(
            "music_audioset_epoch_15_esc_90.14.pt",
            HF_LAION + "music_audioset_epoch_15_esc_90.14.pt",
            description="HTSAT-base, music + AudioSet (laion-htsat-base)",
        ),
        Artifact(
            "music_speech_epoch_15_esc_89.25.pt",
            HF_LAION + "music_speech_epoch_15_esc_89.25.pt",
            description="HTSAT-base, music + speech (laion-htsat-base)",
        ),
        Artifact(
            "CLAP_weights_2022.pth",
            HF_MSCLAP + "CLAP_weights_2022.pth",
            description="Microsoft CLAP 2022, CNN14 + BERT, the LMAC-ZS paper's model (ms-clap-2022)",
        ),
        Artifact(
            "CLAP_weights_2023.pth",
            HF_MSCLAP + "CLAP_weights_2023.pth",
            description="Microsoft CLAP 2023, HTSAT + GPT-2 (ms-clap-2023)",
        ),
    )
}
DEFAULT_CLAP_CHECKPOINT = "630k-audioset-best.pt"
#: model names accepted by ``lmaczs download clap`` for their default checkpoint
CLAP_ALIASES = {
    "ms-clap-2022": "CLAP_weights_2022.pth",
    "ms-clap-2023": "CLAP_weights_2023.pth",
    "laion-htsat-tiny": "630k-audioset-best.pt",
    "laion-htsat-base": "music_speech_audioset_epoch_15_esc_89.98.pt",
}

#: roberta-base BPE files (what RobertaTokenizer needs; LAION-CLAP's text tokenizer).
ROBERTA_TOKENIZER_FILES: dict[str, Artifact] = {
    n: Artifact(n, HF_ROBERTA + n, description="roberta-base tokenizer")
    for n in ("vocab.json", "merges.txt")
}
#: gpt2 BPE files (MS-CLAP 2023's text tokenizer).
GPT2_TOKENIZER_FILES: dict[str, Artifact] = {
    n: Artifact(n, HF_GPT2 + n, description="gpt2 tokenizer") for n in ("vocab.json", "merges.txt")
}
#: the names ``lmaczs download tokenizer NAME`` knows
TOKENIZER_NAMES = ("roberta-base", "gpt2")


def tokenizer_files(name: str) -> dict[str, Artifact]:
    """The files of tokenizer ``name`` (one of :data:`TOKENIZER_NAMES`)."""
    if name == "roberta-base":
        return ROBERTA_TOKENIZER_FILES
    if name == "gpt2":
        return GPT2_TOKENIZER_FILES
    raise UsageError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZER_NAMES)}")

_RETRY_ERRORS = (
    http.client.IncompleteRead,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    ssl.SSLError,
    urllib.error.URLError,
)


class DownloadError(LmaczsError):
    """A download failed (network, HTTP status, size or checksum): exit code 1."""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/lmaczs`` (absolute values only, per the XDG spec) else ``~/.cache/lmaczs``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lmaczs"


def clap_cache_dir() -> Path:
    """Where ``lmaczs download clap`` puts checkpoints and the LAION model looks for them."""
    return cache_root() / "clap"


def tokenizer_cache_dir(name: str = "roberta-base") -> Path:
    """Where ``lmaczs download tokenizer NAME`` puts a tokenizer's files (default roberta-base)."""
    return cache_root() / "tokenizers" / name


def hf_hub_dirs() -> list[Path]:
    """Hugging Face hub cache folders, in huggingface_hub's order of precedence (read at call time).

    The first one is where huggingface_hub (and ``lmaczs download clap hf:...``) writes.
    """
    env = os.environ
    hf_home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    dirs = [env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE"),
            env.get("TRANSFORMERS_CACHE"), os.path.join(hf_home, "hub")]
    return list(dict.fromkeys(Path(os.path.expanduser(d)) for d in dirs if d))


def find_clap_checkpoint(ckpt: str | os.PathLike[str] | None, default: str, *, family: str,
                         get: str | None, get_default: str, ext: str, label: str) -> Path | None:
    """A CLAP checkpoint file, or ``None`` for ``"random"`` weights (never downloads).

    ``ckpt`` (``--clap-ckpt``) > ``$LMACZS_CLAP_CKPT`` > ``default`` in the lmaczs cache; a bare
    file name is also looked for in the cache. Raises a one-line :class:`UsageError` naming
    every place looked at and the ``lmaczs download clap`` name that supplies it (``get``; None:
    the name given); ``family``/``label`` name the model, ``ext`` its file type.
    """
    value = os.fspath(ckpt) if ckpt is not None else os.environ.get("LMACZS_CLAP_CKPT") or None
    cache = clap_cache_dir()
    if value == "random":
        return None
    if value:
        path = Path(value).expanduser()
        if path.is_file():
            return path
        looked = [path]
        if path.name == value:
            if (cache / value).is_file():
                return cache / value
            looked.append(cache / value)
        where = " and ".join(str(p) for p in looked)
        raise UsageError(
            f"{family} checkpoint not found: looked at {where} (from --clap-ckpt/LMACZS_CLAP_CKPT); "
            f"get {'one' if get is None else 'it'} with `lmaczs download clap {get or path.name}` "
            f"or pass an existing {ext} file"
        )
    path = cache / default
    if path.is_file():
        return path
    raise UsageError(
        f"no {label} checkpoint: looked at {path} (no --clap-ckpt, LMACZS_CLAP_CKPT "
        f"unset); run `lmaczs download clap {get_default}` or pass --clap-ckpt FILE "
        "('random' for untrained test weights)"
    )


def hub_snapshots(hub: Path, repos: tuple[str, ...]) -> list[Path]:
    """Snapshot folders of ``repos`` (``models--owner--name``) in one hub cache, each repo's
    ``refs/main`` first (read only, never downloads)."""
    out: list[Path] = []
    for repo in repos:
        root = hub / repo
        ref = root / "refs" / "main"
        if ref.is_file():
            out.append(root / "snapshots" / ref.read_text().strip())
        snaps = root / "snapshots"
        if snaps.is_dir():
            out.extend(sorted(p for p in snaps.iterdir() if p.is_dir()))
    return list(dict.fromkeys(out))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    return file_digests(path, ("sha256",), chunk)["sha256"]


def file_digests(path: Path, algorithms: tuple[str, ...], chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of ``path`` for each hashlib algorithm name (one pass over the file)."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while block := f.read(chunk):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, remembering headers of every hop."""

    def __init__(self) -> None:
        self.hops: list[Any] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        self.hops.append(headers)  # urllib carries the Range header over to the new request
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass
class _Expect:
    size: int | None
    sha256: str | None


def _linked(headers: list[Any], exp: _Expect) -> None:
    """Fill unknown size/sha256 from Hugging Face's X-Linked-* redirect headers."""
    for h in headers:
        etag = (h.get("X-Linked-Etag") or "").strip().strip('"').lower()
        if exp.sha256 is None and re.fullmatch(r"[0-9a-f]{64}", etag):
            exp.sha256 = etag
        size = h.get("X-Linked-Size")
        if exp.size is None and size and size.isdigit():
            exp.size = int(size)


@contextmanager
def _locked_part(part: Path):
    """Open ``part`` for appending, exclusively (a second downloader fails fast)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    f = open(part, "ab")
    try:
        try:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            raise DownloadError(f"{part} is being written by another lmaczs download") from None
        yield f
    finally:
        f.close()


def _transfer(url: str, f: IO[bytes], exp: _Expect, timeout: float, chunk: int,
              progress: Callable[[int, int | None], None] | None) -> None:
    """One HTTP request appending to ``f`` from its current size; raises on short reads."""
    offset = f.seek(0, os.SEEK_END)
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    req = urllib.request.Request(url, headers={"User-Agent": f"lmaczs/{__version__}"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            m = re.match(r"bytes \*/(\d+)", e.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == offset and exp.size in (None, offset):
                exp.size = offset
                return  # the partial file is already complete
            # our partial file does not fit the remote one: start over
            f.truncate(0)
            raise ConnectionError("server refused to resume; restarting") from None
        raise DownloadError(f"HTTP {e.code} {e.reason} for {url}") from None
    with resp:
        _linked(redirects.hops + [resp.headers], exp)
        length = resp.headers.get("Content-Length")
        if resp.status == 206:
            m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                f.truncate(0)
                raise ConnectionError("server sent an unexpected byte range; restarting")
            if exp.size is None and m.group(2) != "*":
                exp.size = int(m.group(2))
        else:  # 200: the whole file (server ignored or was not asked for a range)
            f.truncate(0)
            f.seek(0)
            offset = 0
            if exp.size is None and length and length.isdigit():
                exp.size = int(length)
        expected_here = int(length) if length and length.isdigit() else None
        got = 0
        while block := resp.read(chunk):
            f.write(block)
            got += len(block)
            if progress:
                progress(offset + got, exp.size)
        f.flush()
        if expected_here is not None and got < expected_here:
            raise http.client.IncompleteRead(b"", expected_here - got)


def download(
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    force: bool = False,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, rename atomically.

    An existing ``dest`` of the expected size is kept unless ``force``. Network
    errors and short transfers are retried ``retries`` times, resuming, after
    ``backoff * 2**k`` seconds. ``md5`` is checked like ``sha256`` (for
    publishers that give only MD5). Raises :class:`DownloadError` with a
    one-line reason; after a checksum or size mismatch neither ``dest`` nor the
    ``.part`` file is left behind.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    exp = _Expect(size, sha256.lower() if sha256 else None)
    if force:
        part.unlink(missing_ok=True)
    elif dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    with _locked_part(part) as f:
        attempt = 0
        while True:
            try:
                if exp.size is not None and f.seek(0, os.SEEK_END) > exp.size:
                    f.truncate(0)
                if exp.size is None or f.seek(0, os.SEEK_END) < exp.size:
                    _transfer(url, f, exp, timeout, chunk, progress)
                break
            except _RETRY_ERRORS as e:
                attempt += 1
                if attempt <= retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                    continue
                have = f.seek(0, os.SEEK_END)
                if not have:
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"download of {url} failed ({_reason(e)})") from None
                total = f" of {exp.size}" if exp.size else ""
                raise DownloadError(
                    f"download of {url} interrupted after {have}{total} bytes "
                    f"({_reason(e)}); run the same command again to resume from {part}"
                ) from None
        f.flush()
        os.fsync(f.fileno())
        have = f.seek(0, os.SEEK_END)
    if exp.size is not None and have != exp.size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{dest.name}: got {have} bytes, expected {exp.size}; the partial file was removed"
        )
    _check_digests(part, dest.name, {"sha256": exp.sha256, "md5": md5.lower() if md5 else None})
    os.replace(part, dest)
    return dest


def _check_digests(part: Path, name: str, expected: dict[str, str | None]) -> None:
    """Compare ``part`` with the expected digests; delete it and raise on a mismatch."""
    wanted = {a: v for a, v in expected.items() if v is not None}
    if not wanted:
        return
    got = file_digests(part, tuple(wanted))
    for algorithm, value in wanted.items():
        if got[algorithm] != value:
            part.unlink(missing_ok=True)
            label = {"sha256": "SHA-256", "md5": "MD5"}.get(algorithm, algorithm)
            raise DownloadError(
                f"{name}: {label} mismatch (expected {value}, got {got[algorithm]}); "
                "the corrupt download was removed, nothing was saved"
            )


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    if isinstance(e, http.client.IncompleteRead):
        return "connection closed early"
    return str(e) or type(e).__name__


def clap_artifact(name: str, url: str | None = None, sha256: str | None = None) -> Artifact:
    """The catalogue entry for ``name`` (or an ad-hoc one when ``url`` is given)."""
    if Path(name).name != name or not name:
        raise UsageError(f"checkpoint name {name!r} must be a plain file name")
    name = CLAP_ALIASES.get(name, name)
    known = CLAP_CHECKPOINTS.get(name)
    if url:
        same = known is not None and known.url == url
        return Artifact(
            name, url, known.size if same else None, sha256 or (known.sha256 if same else None)
        )
    if known is None:
        if "fusion" in name:
            raise UsageError(f"{name}: fusion checkpoints are not supported by lmaczs")
        names = ", ".join([*CLAP_ALIASES, *CLAP_CHECKPOINTS])
        raise UsageError(f"unknown checkpoint {name!r}; choose one of: {names} (or pass --url)")
    if sha256:
        return Artifact(known.name, known.url, known.size, sha256, known.description)
    return known


# -- Hugging Face: fail fast offline, quiet retries, decoder repos -------------------------
def hf_endpoint() -> str:
    """The hub's base URL (``$HF_ENDPOINT``, else https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """One quick TCP connect to ``url``'s host (or to the proxy that would carry the request).

    Raises a one-line :class:`DownloadError` when it fails, so an offline machine hears so at
    once instead of after a client's retries with back-off (huggingface_hub: six tries, ~24 s).
    """
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true"):
        raise DownloadError("HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it and run again")
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise DownloadError(f"cannot reach {parts.hostname}:{port} ({reason}); check the network "
                            "connection (or HTTPS_PROXY) and run the command again") from None


@contextmanager
def hf_quiet():
    """Silence huggingface_hub's retry warnings while it works (errors still reach us as exceptions)."""
    import logging

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


#: the files of a decoder repo (``lmaczs decoder export`` writes them)
DECODER_FILES = ("config.json", "model.safetensors", "README.md")


def download_hf_decoder(repo_id: str, revision: str | None = None, force: bool = False) -> Path:
    """Fetch decoder repo ``repo_id`` (at ``revision``) into the Hugging Face cache; returns the
    snapshot folder (``--decoder hf:REPO`` then finds it offline)."""
    check_reachable(hf_endpoint())
    from huggingface_hub import snapshot_download

    try:
        with hf_quiet():
            folder = snapshot_download(repo_id, revision=revision, allow_patterns=list(DECODER_FILES),
                                       cache_dir=str(hf_hub_dirs()[0]), force_download=force)
    except Exception as e:  # noqa: BLE001 - network, auth, missing repo: one line for the user
        text = " ".join(str(e).split())[:200] or type(e).__name__
        raise DownloadError(f"hf:{repo_id}: download failed ({text})") from None
    return Path(folder)
