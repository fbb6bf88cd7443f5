"""``lmaczs download clap hf:<repo-id>``: put a hub CLAP checkpoint into the Hugging Face cache.

The only network use of the Hugging Face backend. It lists the repo, picks the
files lmaczs needs (config, feature-extractor settings, tokenizer files, one set
of weights - safetensors preferred; see :func:`files_to_fetch`) and lets
``huggingface_hub.snapshot_download`` fetch exactly those into the first hub
cache folder (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``), where ``--clap hf:<repo-id>`` then finds them offline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from lmaczs_cli.download import DownloadError, hf_hub_dirs
from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.hf_source import REPO_ID, files_to_fetch


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
