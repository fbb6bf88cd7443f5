"""Fixtures for the Hugging Face CLAP tests: saved random checkpoints and the published configs.

Nothing here touches the network. ``save_random_clap`` writes what a user's
``model.save_pretrained(d); processor.save_pretrained(d)`` writes, with seeded
random weights and the stub tokenizer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmaczs_cli.models.hf.build import random_clap
from lmaczs_cli.models.hf.configs import HTSAT_TINY, TEXT_CONFIG, UNFUSED_EXTRACTOR
from lmaczs_cli.models.stub_tokenizer import stub_roberta_tokenizer, stub_vocab_and_merges

# The hub's files, verbatim values (https://huggingface.co/laion/clap-htsat-unfused,
# .../laion/larger_clap_general, .../laion/clap-htsat-fused): config.json lists only
# what differs from transformers' defaults.
PUBLISHED_CONFIGS: dict[str, dict[str, Any]] = {
    "hf-htsat-tiny": {  # laion/clap-htsat-unfused
        "audio_config": {"fusion_num_hidden_layers": 2, "model_type": "clap_audio_model",
                         "projection_hidden_size": 768},
        "hidden_size": 768, "initializer_factor": 1.0, "logit_scale_init_value": 14.285714285714285,
        "model_type": "clap", "num_hidden_layers": 16, "projection_dim": 512,
        "projection_hidden_act": "relu",
        "text_config": {"classifier_dropout": None, "fusion_hidden_size": 768,
                        "fusion_num_hidden_layers": 2, "initializer_range": 0.02,
                        "model_type": "clap_text_model", "projection_hidden_size": 768},
    },
    "hf-htsat-base": {  # laion/larger_clap_general
        "audio_config": {"depths": [2, 2, 12, 2], "hidden_size": 1024, "model_type": "clap_audio_model",
                         "patch_embeds_hidden_size": 128},
        "hidden_size": 768, "initializer_factor": 1.0, "logit_scale_init_value": 14.285714285714285,
        "model_type": "clap", "num_hidden_layers": 16, "projection_dim": 512,
        "projection_hidden_act": "relu", "text_config": {"model_type": "clap_text_model"},
    },
}
PUBLISHED_EXTRACTOR: dict[str, Any] = {  # preprocessor_config.json of both
    "chunk_length_s": 10, "feature_extractor_type": "ClapFeatureExtractor", "feature_size": 64,
    "fft_window_size": 1024, "frequency_max": 14000, "frequency_min": 50, "hop_length": 480,
    "max_length_s": 10, "n_fft": 1024, "nb_frequency_bins": 513, "nb_max_frames": 1000,
    "nb_max_samples": 480000, "padding": "repeatpad", "padding_side": "right", "padding_value": 0.0,
    "processor_class": "ClapProcessor", "return_attention_mask": False, "sampling_rate": 48000,
    "top_db": None, "truncation": "rand_trunc",
}

# A small CLAP (same input grid and Swin layout as HTSAT, few channels) for save/load tests.
SMALL_AUDIO = {**HTSAT_TINY, "depths": [2, 2, 2, 2], "num_attention_heads": [1, 2, 4, 8],
               "patch_embeds_hidden_size": 32, "hidden_size": 256}
SMALL_TEXT = {**TEXT_CONFIG, "vocab_size": len(stub_vocab_and_merges()[0]), "hidden_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def small_config(fusion: bool = False) -> Any:
    from transformers import ClapConfig

    audio = {**SMALL_AUDIO, "enable_fusion": fusion, "fusion_type": "aff_2d" if fusion else None}
    return ClapConfig(text_config=dict(SMALL_TEXT), audio_config=audio, projection_dim=64,
                      logit_scale_init_value=14.285714285714285)


def save_random_clap(folder: Path, config: Any = None, seed: int = 0, fusion: bool = False) -> Path:
    """``ClapModel`` + ``ClapProcessor`` (stub tokenizer) with random weights, via save_pretrained."""
    from transformers import ClapFeatureExtractor, ClapProcessor

    config = config if config is not None else small_config(fusion)
    clap = random_clap(config, seed)
    extractor = ClapFeatureExtractor(**{**UNFUSED_EXTRACTOR,
                                        "truncation": "fusion" if fusion else "rand_trunc"})
    processor = ClapProcessor(feature_extractor=extractor, tokenizer=stub_roberta_tokenizer())
    clap.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


def fake_hub_cache(hub: Path, repo_id: str, folder: Path, commit: str = "0123abcd") -> Path:
    """A Hugging Face cache entry for ``repo_id`` whose snapshot links to ``folder``'s files."""
    root = hub / ("models--" + repo_id.replace("/", "--"))
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        os.symlink(f, snap / f.name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return snap
