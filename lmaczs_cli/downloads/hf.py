"""Hugging Face hub downloads: ``lmaczs download clap hf:<repo-id>`` and ``lmaczs download decoder``.

The only network use of the Hugging Face backend. :func:`download_hf_clap` lists the repo,
picks the files lmaczs needs (config, feature-extractor settings, tokenizer files, one set
of weights - safetensors preferred; see :func:`lmaczs_cli.models.hf.source.files_to_fetch`) and
lets ``huggingface_hub.snapshot_download`` fetch exactly those into the first hub cache folder
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), where
``--clap hf:<repo-id>`` then finds them offline; :func:`download_hf_decoder` does the same for
a decoder repo (``--decoder hf:ORG/REPO``). :func:`check_reachable` fails fast when offline.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lmaczs_cli.downloads.cache import hf_hub_dirs
from lmaczs_cli.downloads.fetch import DownloadError
from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.hf.source import REPO_ID, files_to_fetch


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


@contextlib.contextmanager
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
        raise DownloadError(f"hf:{repo_id}: download failed ({_reason(e)})") from None
    return Path(folder)


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not enabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not enabled and not was_disabled:
            enable_progress_bars()


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:200] if text else type(e).__name__


def download_hf_clap(repo_id: str, force: bool = False, quiet: bool = False,
                     url: str | None = None, sha256: str | None = None) -> Path:
    """Fetch what ``--clap hf:<repo_id>`` needs into the HF cache; returns the snapshot folder."""
    if url or sha256:
        raise UsageError("--url/--sha256 do not apply to hf:<repo-id> (the hub names and checks the files)")
    if not REPO_ID.fullmatch(repo_id):
        raise UsageError(f"hf:{repo_id}: not a hub repo id (owner/name), e.g. hf:laion/clap-htsat-unfused")
    from huggingface_hub import HfApi, snapshot_download

    try:
        listing = HfApi().list_repo_files(repo_id)
    except Exception as e:  # noqa: BLE001 - network, auth, missing repo: one line for the user
        raise DownloadError(f"hf:{repo_id}: cannot list the repo files ({_reason(e)})") from None
    try:
        files = files_to_fetch(list(listing))
    except UsageError as e:
        raise UsageError(f"hf:{repo_id}: {e}") from None
    try:
        with _progress_bars(not quiet):
            folder = snapshot_download(repo_id, cache_dir=str(hf_hub_dirs()[0]), allow_patterns=files,
                                       force_download=force)
    except Exception as e:  # noqa: BLE001
        raise DownloadError(f"hf:{repo_id}: download failed ({_reason(e)}); run it again to resume") from None
    return Path(folder)
