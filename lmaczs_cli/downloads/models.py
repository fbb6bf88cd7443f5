"""The model files ``lmaczs download clap`` and ``lmaczs download tokenizer`` know: URLs, sizes, digests.

No network here: :func:`clap_artifact` turns a name (or an alias such as ``ms-clap-2022``, or
an ad-hoc ``--url``) into the :class:`Artifact` that :func:`lmaczs_cli.downloads.fetch.download`
then fetches and checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmaczs_cli.errors import UsageError

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
