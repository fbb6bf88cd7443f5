"""Decoders that travel: hub-ready folders, ``hf:`` ids and the local registry of default decoders.

A decoder folder (what ``lmaczs decoder export`` writes, what a Hugging Face repo holds)::

    model.safetensors   the decoder's state dict (safetensors: loading it runs no code)
    config.json         format, spec_id, mask_domain, decoder_config, metrics, training, the
                        CLAP weights digest and the sha256 of model.safetensors
    README.md           the model card (YAML front matter for the Hub: library_name lmaczs)

``--decoder`` takes a ``.pt`` checkpoint, such a folder, or ``hf:ORG/REPO[@REV]``, which is
looked up in the local Hugging Face cache only (``lmaczs download decoder`` fills it). A folder
whose weights do not match the digest in its config.json is refused.

The registry (``$LMACZS_DECODER_CACHE``, else ``<lmaczs cache>/decoders``) holds one folder per
model weights and mask domain: ``lmaczs train`` and ``lmaczs download decoder`` put the decoder
there, and LMAC-ZS uses it when no ``--decoder`` is given. Its key is the model's ``spec_id``
plus the digest of the CLAP weights (the checkpoint file's sha256; for Hugging Face models the
weights fingerprint already in ``spec_id``), so a decoder is never picked up for other weights.

No torch at import time: preflight reads config.json files only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lmaczs_cli import __version__
from lmaczs_cli.errors import UsageError

FORMAT = "lmaczs-decoder"  # the same format name as .pt checkpoints (lmaczs_cli.checkpoints)
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
HUB_ID = re.compile(r"hf:(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)"
                    r"(?:@(?P<rev>[A-Za-z0-9][A-Za-z0-9_./-]*))?")
DOMAINS = ("stft", "mel")
#: config.json entries beyond the checkpoint's own, kept when a folder is written again (registry)
CARRIED = ("clap_weights", "clap_checkpoint", "train", "sanity_check", "source")


# -- where a --decoder value points ------------------------------------------------------
def is_hub_id(value: str | os.PathLike[str]) -> bool:
    return str(value).startswith("hf:")


def parse_hub_id(value: str, where: str = "--decoder") -> tuple[str, str | None]:
    """``hf:ORG/REPO[@REV]`` -> (repo id, revision or None); a one-line error otherwise."""
    m = HUB_ID.fullmatch(value)
    if not m:
        raise UsageError(f"{where} {value}: expected hf:ORG/REPO or hf:ORG/REPO@REVISION")
    return m["repo"], m["rev"]


def hub_folder(value: str) -> Path:
    """The snapshot folder of decoder ``hf:ORG/REPO[@REV]`` in the Hugging Face cache (never downloads)."""
    from lmaczs_cli.downloads.cache import hf_hub_dirs

    repo, rev = parse_hub_id(value)
    hubs = hf_hub_dirs()
    for hub in hubs:
        root = hub / ("models--" + repo.replace("/", "--"))
        ref = root / "refs" / (rev or "main")
        commit = ref.read_text().strip() if ref.is_file() else (rev or "")
        snap = root / "snapshots" / commit
        if commit and (snap / CONFIG).is_file():
            return snap
    where = ", ".join(str(h) for h in hubs)
    raise UsageError(f"--decoder {value}: not in the Hugging Face cache (looked in {where}); run "
                     f"`lmaczs download decoder {value}` (the only step that uses the network)")


def is_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG).is_file()


def source_problem(value: str | os.PathLike[str]) -> str | None:
    """What is wrong with a ``--decoder`` value, without reading weights (None: it looks usable)."""
    if is_hub_id(value):
        parse_hub_id(str(value))  # a malformed id is its own one-line error
        try:
            hub_folder(str(value))
        except UsageError:
            return f"the decoder {value} (`lmaczs download decoder {value}`)"
        return None
    path = Path(value)
    if path.is_dir():
        lacks = [n for n in (CONFIG, WEIGHTS) if not (path / n).is_file()]
        return f"the decoder folder {path} (--decoder): it lacks {' and '.join(lacks)}" if lacks else None
    return None if path.is_file() else f"the decoder file {value} (--decoder): no such file"


# -- reading a folder --------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_config(folder: Path, name: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of a decoder folder, checked for format and version (no weights read)."""
    try:
        cfg = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"{name}: {CONFIG} cannot be read ({type(e).__name__})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise UsageError(f"{name}: not an lmaczs decoder folder ({CONFIG} lacks format {FORMAT!r})")
    if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise UsageError(f"{name}: decoder format {cfg['format_version']} is newer than this lmaczs "
                         f"({__version__}) reads; upgrade lmaczs")
    return cfg


def read_folder(folder: Path, name: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A decoder folder as the checkpoint dict :mod:`lmaczs_cli.checkpoints` uses.

    The weights are checked against config.json's sha256 before they are parsed, and parsed
    by safetensors (tensors only: nothing is unpickled).
    """
    name = name or folder
    cfg = read_config(folder, name)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise UsageError(f"{name}: {WEIGHTS} is missing")
    want = str((cfg.get("weights") or {}).get("sha256") or "")
    if sha256_of(weights) != want:
        raise UsageError(f"{name}: {WEIGHTS} does not match the sha256 in {CONFIG} (tampered with or "
                         "damaged); refusing to load it")
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except Exception as e:  # noqa: BLE001 - a damaged file is a bad file for the user
        raise UsageError(f"{name}: {WEIGHTS} cannot be read ({type(e).__name__})") from None
    return {**cfg, "decoder": state}


# -- writing a folder --------------------------------------------------------------------
def folder_config(payload: Mapping[str, Any], weights_sha256: str, size: int,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """config.json for checkpoint dict ``payload`` (training roots, local paths, are left out)."""
    training = [{k: v for k, v in dict(t).items() if k != "root"} for t in payload.get("training") or []]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "lmaczs_version": __version__,
        "spec_id": dict(payload["spec_id"]), "mask_domain": payload["mask_domain"],
        "decoder_config": dict(payload["decoder_config"]),
        "metrics": {k: v for k, v in dict(payload.get("metrics") or {}).items()},
        "training": training,
        "weights": {"file": WEIGHTS, "sha256": weights_sha256, "bytes": size},
        **{k: payload[k] for k in CARRIED if payload.get(k) is not None},
        **dict(extra or {}),
    }


@contextlib.contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """A temporary folder beside ``final``; the caller renames it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fill(tmp: Path, payload: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    from safetensors.torch import save_file

    from lmaczs_cli.decoder_card import model_card

    state = {k: v.detach().cpu().contiguous() for k, v in payload["decoder"].items()}
    save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})  # one key: byte-reproducible
    cfg = folder_config(payload, sha256_of(tmp / WEIGHTS), (tmp / WEIGHTS).stat().st_size, extra)
    (tmp / CONFIG).write_text(json.dumps(cfg, indent=2, default=str) + "\n", encoding="utf-8")
    (tmp / CARD).write_text(model_card(cfg), encoding="utf-8")
    mode = 0o777 & ~_umask()
    os.chmod(tmp, mode)
    for f in tmp.iterdir():
        os.chmod(f, mode & 0o666)
    return cfg


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_folder(payload: Mapping[str, Any], out: Path, extra: Mapping[str, Any] | None = None) -> dict:
    """Write checkpoint dict ``payload`` as a decoder folder ``out`` (new or empty), all at once.

    An ``out`` holding files is refused: an earlier export is never overwritten.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: already exists and is not an empty folder; "
                         "choose a new folder (an export is never overwritten)")
    with _staged(out) as tmp:
        cfg = _fill(tmp, payload, extra)
        try:
            os.replace(tmp, out)  # POSIX: replaces an empty folder, fails on a non-empty one
        except OSError:
            raise UsageError(f"--out {out}: another export wrote there meanwhile; nothing was "
                             "changed") from None
    return cfg


# -- the registry of default decoders ----------------------------------------------------
def registry_dir() -> Path:
    """``$LMACZS_DECODER_CACHE``, else ``<lmaczs cache>/decoders``."""
    from lmaczs_cli.downloads.cache import cache_root

    env = os.environ.get("LMACZS_DECODER_CACHE")
    return Path(env).expanduser() if env else cache_root() / "decoders"


def registry_key(spec_id: Mapping[str, Any], clap_weights: str) -> str:
    """Folder name for a model: its name (readable) and a digest of spec_id + weights digest."""
    text = json.dumps({"spec_id": dict(spec_id), "clap_weights": clap_weights}, sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(spec_id.get("model", "model"))).strip("._")[:48]
    return f"{slug or 'model'}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def model_weights_digest(model: Any) -> str | None:
    """The digest a decoder's ``clap_weights`` must equal for ``model`` (None: random weights).

    Hugging Face models carry a weights fingerprint in ``spec_id``; others are known by the
    sha256 of their checkpoint file (cached by path, size and mtime, as run records use it).
    """
    path = getattr(model, "checkpoint_path", None)
    if not path or getattr(model, "random_weights", False):
        return None
    spec = model.spec_id()
    if spec.get("weights"):
        return str(spec["weights"])
    from lmaczs_cli.provenance import file_sha256

    return file_sha256(path)


def register(payload: Mapping[str, Any], clap_weights: str, source: str) -> Path:
    """Make ``payload`` the default decoder of its model weights and mask domain; returns its folder.

    Replaces the decoder registered there before (the registry is a cache: the source stays
    where it was).
    """
    final = registry_dir() / registry_key(payload["spec_id"], clap_weights) / str(payload["mask_domain"])
    with _staged(final) as tmp:
        _fill(tmp, payload, {"clap_weights": clap_weights, "source": source})
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    return final


def registered(spec_id: Mapping[str, Any], clap_weights: str | None, domain: str | None) -> Path | None:
    """The registered decoder folder for these model weights (``domain`` None: stft, else mel)."""
    if not clap_weights:
        return None
    root = registry_dir() / registry_key(spec_id, clap_weights)
    for d in (domain,) if domain else DOMAINS:
        if is_folder(root / d):
            return root / d
    return None


def model_names(clap: str) -> set[str]:
    """The names a model built for ``--clap clap`` may carry (``hf:`` ids, resolved folders: its
    family's record says, :mod:`lmaczs_cli.models.families`)."""
    from lmaczs_cli.models.families import family_of

    family = family_of(clap)
    return {clap} if family is None else family.names_of(clap)


def registered_for_clap(clap: str, domain: str | None) -> Path | None:
    """Any registered decoder for a model of ``--clap clap`` (preflight: no model is built, so its
    weights digest is unknown; the exact match is made when the model is loaded)."""
    names = model_names(clap)
    root = registry_dir()
    if not root.is_dir():
        return None
    for entry in sorted(root.iterdir()):
        for d in (domain,) if domain else DOMAINS:
            folder = entry / d
            if not is_folder(folder):
                continue
            with contextlib.suppress(UsageError):
                if str(read_config(folder, folder).get("spec_id", {}).get("model")) in names:
                    return folder
    return None


def registered_models(spec_id: Mapping[str, Any]) -> list[str]:
    """Weights digests registered for a model of the same name (for the 'other weights' message)."""
    return list(dict.fromkeys(str(r["clap_weights"]) for r in list_registered()
                              if r["model"] == spec_id.get("model")))


def list_registered() -> list[dict[str, Any]]:
    """One row per registered decoder: model, mask domain, CLAP weights digest, source, folder."""
    root = registry_dir()
    rows = []
    for cfg_path in sorted(root.glob("*/*/" + CONFIG)) if root.is_dir() else []:
        with contextlib.suppress(UsageError):
            cfg = read_config(cfg_path.parent, cfg_path.parent)
            rows.append({"model": cfg.get("spec_id", {}).get("model"), "mask_domain": cfg.get("mask_domain"),
                         "clap_weights": cfg.get("clap_weights"), "source": cfg.get("source"),
                         "folder": str(cfg_path.parent)})
    return rows
