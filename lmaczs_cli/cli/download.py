"""``lmaczs download``: fetch model files, decoder repos and data sets on explicit request (the only
network use); the work is done in :mod:`lmaczs_cli.downloads`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import err, handle_errors
from lmaczs_cli.downloads.models import default_clap_checkpoint

#: the default model's default checkpoint (its family's record)
DEFAULT_NAME = default_clap_checkpoint()

download_app = typer.Typer(
    help=(
        "Download model files and data sets into the cache ($XDG_CACHE_HOME/lmaczs, else "
        "~/.cache/lmaczs). Nothing else in lmaczs uses the network."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


class _Progress:
    """Percent/MB line on stderr, at most ~4 updates a second."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self.last = label, enabled, 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < (0.25 if self.tty else 10.0)):
            return
        self.last = now
        pct = f"{100 * done / total:5.1f}% " if total else ""
        line = f"{self.label}: {pct}{done / 1e6:,.1f} MB"
        if self.tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        else:
            err(line)

    def close(self) -> None:
        if self.enabled and self.tty and self.last:
            print(file=sys.stderr, flush=True)


def _fetch(url: str, dest: Path, size: int | None, sha256: str | None, force: bool,
           quiet: bool) -> None:
    from lmaczs_cli.downloads.fetch import download

    if dest.is_file() and not force and (size is None or dest.stat().st_size == size):
        err(f"lmaczs: {dest.name} already present (use --force to download again)")
        return
    progress = _Progress(dest.name, not quiet)
    try:
        download(url, dest, size=size, sha256=sha256, force=force, progress=progress)
    finally:
        progress.close()


@download_app.command("clap")
@handle_errors()
def clap(
    name: o.CheckpointName = DEFAULT_NAME,
    url: o.Url = None,
    sha256: o.Sha256 = None,
    force: o.Force = False,
    list_: o.ListCheckpoints = False,
    quiet: o.Quiet = False,
    debug: o.Debug = False,
) -> None:
    """Download a CLAP checkpoint (LAION non-fusion, Microsoft CLAP). Prints the saved path.

    Examples: lmaczs download clap 630k-audioset-best.pt; lmaczs download clap ms-clap-2022
    Hugging Face: lmaczs download clap hf:laion/clap-htsat-unfused (prints the snapshot folder)
    """
    from lmaczs_cli.downloads.cache import clap_cache_dir
    from lmaczs_cli.downloads.models import clap_artifact, clap_checkpoints
    from lmaczs_cli.models.families import family_of, list_families

    family = family_of(name)
    repo = None if family is None else family.hub_repo(name)
    if repo is not None:  # a hub repo (the family's record says which names are)
        from lmaczs_cli.downloads.hf import check_reachable, download_hf_clap, hf_endpoint, hf_quiet

        if not (url or sha256):  # those are refused by download_hf_clap with their own message
            check_reachable(hf_endpoint())  # offline: one line now, not huggingface_hub's retries
        with hf_quiet():
            typer.echo(str(download_hf_clap(repo, force, quiet, url, sha256)))
        return
    if list_:
        for a in clap_checkpoints().values():
            typer.echo(f"{a.name}\t{a.description}")
        for f in list_families():
            if f.hub_prefix:
                hub = f"{f.hub_prefix}<repo-id>"
                typer.echo(f"{hub}\ta Hugging Face hub repo, into the hub cache (for --clap {hub})")
        return
    art = clap_artifact(name, url, sha256)
    dest = clap_cache_dir() / art.name
    _fetch(art.url, dest, art.size, art.sha256, force, quiet)
    typer.echo(str(dest))


@download_app.command("tokenizer")
@handle_errors()
def tokenizer(
    name: o.TokenizerName = "roberta-base", force: o.Force = False, quiet: o.Quiet = False,
    debug: o.Debug = False,
) -> None:
    """Download a tokenizer's vocab.json and merges.txt (roberta-base for LAION-CLAP, gpt2 for
    ms-clap-2023; ms-clap-2022's BERT vocabulary ships with lmaczs).

    Prints the folder, usable as --tokenizer-dir (lmaczs also finds it by itself).
    """
    from lmaczs_cli.downloads.cache import tokenizer_cache_dir
    from lmaczs_cli.downloads.models import tokenizer_files

    files = tokenizer_files(name)
    folder = tokenizer_cache_dir(name)
    for art in files.values():
        _fetch(art.url, folder / art.name, art.size, art.sha256, force, quiet)
    typer.echo(str(folder))


@download_app.command("dataset")
@handle_errors()
def dataset(
    name: o.DatasetName = None,
    dest: o.Dest = None,
    force: o.Force = False,
    list_: o.ListDatasets = False,
    quiet: o.Quiet = False,
    debug: o.Debug = False,
) -> None:
    """Download a data set from its publisher, verified, laid out as --data-root reads it.

    Prints the licence first and the folder at the end. Example: lmaczs download dataset esc50
    """
    from lmaczs_cli.cli.common import ConsoleReporter
    from lmaczs_cli.downloads.datasets.catalogue import DATASETS
    from lmaczs_cli.downloads.datasets.install import human_size, install_dataset
    from lmaczs_cli.errors import UsageError

    if list_:
        for s in DATASETS.values():
            typer.echo(f"{s.name}\t{human_size(s.download_size())}\t{s.title}\tlicence: {s.licence}")
        return
    if not name:
        raise UsageError(f"name a data set: {', '.join(DATASETS)} (see --list)")
    folder = install_dataset(name, dest, force=force, reporter=ConsoleReporter(quiet=quiet),
                             progress=lambda label: _Progress(label, not quiet))
    typer.echo(str(folder))


@download_app.command("decoder")
@handle_errors()
def decoder(
    repo: o.DecoderRepo, force: o.Force = False, quiet: o.Quiet = False, debug: o.Debug = False
) -> None:
    """Download an LMAC-ZS decoder repo (made with lmaczs decoder export) into the Hugging Face cache.

    Its weights are checked against its config.json; then --decoder hf:ORG/REPO finds it offline,
    and it becomes the default decoder for the model weights it was trained for. Prints the folder.
    Example: lmaczs download decoder hf:ORG/REPO (upload one with: huggingface-cli upload ORG/REPO DIR)
    """
    from lmaczs_cli.decoder_hub import parse_hub_id, read_folder
    from lmaczs_cli.decoder_hub import register as make_default
    from lmaczs_cli.downloads.hf import download_hf_decoder

    repo_id, rev = parse_hub_id(repo, "lmaczs download decoder")
    folder = download_hf_decoder(repo_id, rev, force)
    payload = read_folder(folder, repo)  # refuses a folder whose weights do not match its digest
    spec = payload["spec_id"]
    if payload.get("clap_weights"):
        where = make_default(payload, str(payload["clap_weights"]), f"{repo}@{folder.name}")
        if not quiet:
            err(f"lmaczs: {repo} is now the default {payload['mask_domain']} decoder for --clap "
                f"{spec.get('model')} with these weights ({where})")
    elif not quiet:
        err(f"lmaczs: {repo} does not name the model weights it was trained for, so it is not made a "
            f"default: pass it with --decoder {repo}")
    typer.echo(str(folder))


def register(app: typer.Typer) -> None:
    app.add_typer(download_app, name="download")
