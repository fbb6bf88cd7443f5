"""Fixtures for the PE-Audio tests: a small ``PeAudioConfig`` (the real layout - DAC codec with
strides 2, 8, 10, 12, RoPE transformer, ModernBERT text - few channels) with seeded random
weights, in memory or written with ``save_pretrained``. Nothing here touches the network."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from lmaczs_cli.models.pe_audio.model import EXTRACTOR, PeAudio, random_pe_audio
from lmaczs_cli.models.stub_tokenizer import stub_roberta_tokenizer, stub_vocab_and_merges

SMALL_TEXT: dict[str, Any] = {
    "model_type": "modernbert", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 2, "max_position_embeddings": 512,
    # the stub tokenizer's roberta-style ids
    "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "cls_token_id": 0, "sep_token_id": 2,
}
SMALL_AUDIO: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
    "head_dim": 16,
    "dac_config": {"encoder_hidden_size": 4, "downsampling_ratios": [2, 8, 10, 12], "hidden_size": 16,
                   "codebook_dim": 8},
}


def small_config() -> Any:
    from transformers import PeAudioConfig

    text = {**SMALL_TEXT, "vocab_size": len(stub_vocab_and_merges()[0])}
    return PeAudioConfig(text_config=text, audio_config=dict(SMALL_AUDIO))


def small_model(window_seconds: float = 10.0, seed: int = 0) -> PeAudio:
    from transformers import PeAudioFeatureExtractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pe = random_pe_audio(small_config(), seed)
        model = PeAudio(pe, PeAudioFeatureExtractor(**EXTRACTOR), stub_roberta_tokenizer(), "pe-audio-small",
                        "random", window_seconds=window_seconds).eval()
    for p in model.parameters():  # frozen, as create_model leaves every model
        p.requires_grad_(False)
    return model


def save_random_pe_audio(folder: Path, seed: int = 0) -> Path:
    """``PeAudioModel`` + ``PeAudioProcessor`` (stub tokenizer) with random weights, via save_pretrained."""
    from transformers import PeAudioFeatureExtractor, PeAudioProcessor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pe = random_pe_audio(small_config(), seed)
        processor = PeAudioProcessor(feature_extractor=PeAudioFeatureExtractor(**EXTRACTOR),
                                     tokenizer=stub_roberta_tokenizer())
        pe.save_pretrained(str(folder))
        processor.save_pretrained(str(folder))
    return folder
