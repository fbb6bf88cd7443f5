"""The Microsoft CLAP family's record (:mod:`lmaczs_cli.models.families`) and its checkpoint catalogue.

The checkpoints of Hugging Face ``microsoft/msclap`` (the same files are published on Zenodo,
records 7312125 (2022) and 8378278 (2022, 2023), usable with ``lmaczs download clap --url``) and
gpt2's BPE files (MS-CLAP 2023's text tokenizer; 2022's BERT vocabulary ships with lmaczs).
"""

from lmaczs_cli.models.records import Artifact, Family

HF_MSCLAP = "https://huggingface.co/microsoft/msclap/resolve/main/"
HF_GPT2 = "https://huggingface.co/openai-community/gpt2/resolve/main/"

CHECKPOINTS = (
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
#: gpt2 BPE files (MS-CLAP 2023's text tokenizer)
GPT2_TOKENIZER = tuple(
    Artifact(n, HF_GPT2 + n, description="gpt2 tokenizer") for n in ("vocab.json", "merges.txt"))

FAMILY = Family(
    "ms-clap", ("ms-clap-*",), "ms-clap-2022 (the paper's), ms-clap-2023 (Microsoft CLAP)",
    preflight="lmaczs_cli.models.msclap.checkpoint:preflight_missing", preset="ms-clap-2022",
    presets_by_name={"ms-clap-2023": "ms-clap-2023"},
    checkpoints=CHECKPOINTS,
    aliases={"ms-clap-2022": "CLAP_weights_2022.pth", "ms-clap-2023": "CLAP_weights_2023.pth"},
    tokenizers={"gpt2": GPT2_TOKENIZER},
)
