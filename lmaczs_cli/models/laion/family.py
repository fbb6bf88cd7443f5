"""The LAION-CLAP family's record (:mod:`lmaczs_cli.models.families`) and its checkpoint catalogue.

Checkpoints of ``lukewys/laion_clap`` on Hugging Face (the URLs ``laion_clap``'s
``CLAP_Module.load_ckpt`` downloads from: non-fusion, and fusion for ``laion-htsat-tiny-fusion``) and
roberta-base's BPE files (its text tokenizer). Size and SHA-256 are pinned where independently known;
for the others the Hugging Face headers (X-Linked-Size, X-Linked-Etag) give them at download time.
"""

from lmaczs_cli.models.records import Artifact, Family

HF_LAION = "https://huggingface.co/lukewys/laion_clap/resolve/main/"
HF_ROBERTA = "https://huggingface.co/FacebookAI/roberta-base/resolve/main/"

CHECKPOINTS = (
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
        "630k-audioset-fusion-best.pt",
        HF_LAION + "630k-audioset-fusion-best.pt",
        description="HTSAT-tiny fusion, LAION-Audio-630K + AudioSet (default; laion-htsat-tiny-fusion)",
    ),
    Artifact(
        "630k-fusion-best.pt",
        HF_LAION + "630k-fusion-best.pt",
        description="HTSAT-tiny fusion, LAION-Audio-630K (laion-htsat-tiny-fusion)",
    ),
)
#: roberta-base BPE files (what RobertaTokenizer needs; LAION-CLAP's text tokenizer)
ROBERTA_TOKENIZER = tuple(
    Artifact(n, HF_ROBERTA + n, description="roberta-base tokenizer") for n in ("vocab.json", "merges.txt"))

FAMILY = Family(
    "laion", ("laion-*",),
    "laion-htsat-tiny, laion-htsat-base, laion-htsat-tiny-fusion (LAION-CLAP; fusion: long clips seen whole)",
    preflight="lmaczs_cli.models.laion.checkpoint:preflight_missing", preset="laion",
    checkpoints=CHECKPOINTS,
    aliases={"laion-htsat-tiny": "630k-audioset-best.pt",
             "laion-htsat-base": "music_speech_audioset_epoch_15_esc_89.98.pt",
             "laion-htsat-tiny-fusion": "630k-audioset-fusion-best.pt"},
    tokenizers={"roberta-base": ROBERTA_TOKENIZER},
)
