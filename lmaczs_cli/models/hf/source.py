"""Where an ``hf:<repo-id-or-folder>`` model lives on disk, and which of its files lmaczs needs.

Resolution never touches the network: an existing folder (``save_pretrained``
output) wins; otherwise a hub repo id is looked up in the Hugging Face cache
(``refs/main`` of ``models--owner--name``), which only ``lmaczs download clap
hf:owner/name`` fills. A missing piece is one :class:`UsageError` line saying
what is missing and how to get it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lmaczs_cli.downloads.cache import hf_hub_dirs
from lmaczs_cli.errors import UsageError

REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
CONFIG = "config.json"
PREPROCESSOR = "preprocessor_config.json"  # hub checkpoints; transformers 5 saves the
PROCESSOR = "processor_config.json"  # extractor settings inside processor_config.json instead
#: weight files, in the order lmaczs prefers them (safetensors first); a sharded
#: checkpoint is its index plus the shards it names
WEIGHTS = (
    ("model.safetensors",),
    ("model.safetensors.index.json", "model-*.safetensors"),
    ("pytorch_model.bin",),
    ("pytorch_model.bin.index.json", "pytorch_model-*.bin"),
)
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json",
)


@dataclass(frozen=True)
class HfSource:
    """A resolved ``hf:`` model: the folder holding its files and how the user named it."""

    spec: str  # as given after ``hf:``
    folder: Path
    repo_id: str | None  # set when found in the hub cache

    @property
    def model_name(self) -> str:
        """Registry name: ``hf:<repo id>`` or ``hf:<absolute folder>``."""
        return f"hf:{self.repo_id or self.folder}"


def has_tokenizer(folder: Path) -> bool:
    files = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return bool({"tokenizer.json", "tokenizer_config.json"} & files) or {
        "vocab.json", "merges.txt"} <= files


def has_weights(folder: Path) -> bool:
    return any((folder / group[0]).is_file() for group in WEIGHTS)


def has_extractor(folder: Path) -> bool:
    return (folder / PREPROCESSOR).is_file() or (folder / PROCESSOR).is_file()


def missing_files(folder: Path) -> list[str]:
    """What a ClapModel + ClapProcessor folder lacks (empty when complete)."""
    out = [] if (folder / CONFIG).is_file() else [CONFIG]
    if not has_extractor(folder):
        out.append(f"feature-extractor settings ({PREPROCESSOR} or {PROCESSOR})")
    if not has_weights(folder):
        out.append("weights (model.safetensors or pytorch_model.bin)")
    if not has_tokenizer(folder):
        out.append("tokenizer files (tokenizer.json / tokenizer_config.json or vocab.json + merges.txt)")
    return out


def hub_snapshot(hub: Path, repo_id: str) -> Path | None:
    """The ``refs/main`` snapshot of ``repo_id`` in one hub cache folder, if present."""
    root = hub / ("models--" + repo_id.replace("/", "--"))
    ref = root / "refs" / "main"
    if ref.is_file():
        snap = root / "snapshots" / ref.read_text().strip()
        if snap.is_dir():
            return snap
    return None


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") != 1 or spec.endswith("/")


def resolve_hf_source(spec: str, need: str = "all") -> HfSource:
    """Folder of the ``hf:`` model ``spec`` (a folder, else a repo id in the HF cache).

    ``need="all"`` requires weights; ``need="config"`` (random weights of that
    architecture) only the config, extractor settings and tokenizer.
    """
    if not spec:
        raise UsageError("--clap hf: needs a repo id or a folder, e.g. hf:laion/clap-htsat-unfused")
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return _checked(HfSource(spec, folder.resolve(), None), need)
    if _looks_like_path(spec) or not REPO_ID.fullmatch(spec):
        raise UsageError(f"--clap hf:{spec}: no such folder (and not a hub repo id like owner/name)")
    hubs = hf_hub_dirs()
    for hub in hubs:
        snap = hub_snapshot(hub, spec)
        if snap is not None:
            return _checked(HfSource(spec, snap, spec), need)
    where = ", ".join(str(h) for h in hubs)
    raise UsageError(
        f"--clap hf:{spec}: not in the Hugging Face cache (looked in {where}) and no such folder; "
        f"run `lmaczs download clap hf:{spec}` (the only step that uses the network)"
    )


def _checked(src: HfSource, need: str) -> HfSource:
    missing = missing_files(src.folder)
    if need != "all":
        missing = [m for m in missing if not m.startswith("weights")]
    if not missing:
        return src
    if src.repo_id:
        hint = f"run `lmaczs download clap hf:{src.repo_id}` to fetch them"
    else:
        hint = "write them with model.save_pretrained(FOLDER) and processor.save_pretrained(FOLDER)"
    raise UsageError(f"--clap hf:{src.spec}: {src.folder} lacks {', '.join(missing)}; {hint}")


def files_to_fetch(listing: list[str]) -> list[str]:
    """The files of a hub repo listing that ``lmaczs download clap hf:...`` fetches.

    Config, feature-extractor settings, tokenizer files and one set of weights
    (safetensors preferred over ``pytorch_model.bin``). Raises when the repo has no
    config or no weights lmaczs can use.
    """
    have = set(listing)
    if CONFIG not in have:
        raise UsageError(f"the repo has no {CONFIG}: not a transformers model")
    if not {PREPROCESSOR, PROCESSOR} & have:
        raise UsageError(f"the repo has no {PREPROCESSOR} or {PROCESSOR} (ClapFeatureExtractor settings)")
    picked = [f for f in (CONFIG, PREPROCESSOR, PROCESSOR, *TOKENIZER_FILES) if f in have]
    for group in WEIGHTS:
        if group[0] in have:
            shards = [f for f in listing if len(group) > 1 and Path(f).match(group[1])]
            return picked + [group[0], *sorted(shards)]
    raise UsageError("the repo has no model.safetensors or pytorch_model.bin weights")


#: the hub repositories of the named Hugging Face models (``--clap hf-htsat-tiny``)
NAMED_REPOS = {"hf-htsat-tiny": "laion/clap-htsat-unfused", "hf-htsat-base": "laion/larger_clap_general"}


def preflight_missing(clap: str, ckpt: str | None, tokenizer_dir: object = None) -> list[str]:
    """What a Hugging Face ClapModel run lacks on this machine (a complete folder or cached repo)."""
    if clap in NAMED_REPOS and str(ckpt) == "random":
        return []
    spec = NAMED_REPOS.get(clap, clap.removeprefix("hf:"))
    try:
        resolve_hf_source(spec, need="all")
    except UsageError:
        if Path(spec).expanduser().exists() or spec.startswith((".", "/", "~")):
            return [f"a complete Hugging Face CLAP folder at {spec} (config, extractor settings, weights)"]
        return [f"the Hugging Face model {spec} (`lmaczs download clap hf:{spec}`)"]
    return []


def model_names(clap: str) -> set[str]:
    """The other names a model built for ``--clap clap`` may carry: ``hf:<repo>`` of a named
    architecture, ``hf:<absolute folder>`` of a folder (its record's ``names`` hook)."""
    names = set()
    if clap in NAMED_REPOS:
        names.add(f"hf:{NAMED_REPOS[clap]}")
    spec = clap.removeprefix("hf:")
    if spec != clap and Path(spec).expanduser().is_dir():
        names.add(f"hf:{Path(spec).expanduser().resolve()}")
    return names
