"""The published Hugging Face CLAP checkpoints' architectures and feature-extractor settings, as data.

``hf-htsat-tiny`` has the configuration of ``laion/clap-htsat-unfused`` and
``hf-htsat-base`` that of ``laion/larger_clap_general`` (also
``larger_clap_music`` and ``larger_clap_music_and_speech``). The hub's
``config.json`` files only list values that differ from transformers' defaults;
here every value that shapes the network or its input is written out, so a random
model of the same architecture can be built with no file and no network
(tests/test_hf_parity.py checks them against the published files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: RoBERTa-base text tower (both checkpoints)
TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}

_HTSAT_COMMON: dict[str, Any] = {
    "window_size": 8,
    "num_mel_bins": 64,
    "spec_size": 256,
    "hidden_act": "gelu",
    "patch_size": 4,
    "patch_stride": [4, 4],
    "num_attention_heads": [4, 8, 16, 32],
    "enable_fusion": False,
    "fusion_type": None,
    "patch_embed_input_channels": 1,
    "flatten_patch_embeds": True,
    "enable_patch_layer_norm": True,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "layer_norm_eps": 1e-5,
}

#: HTSAT-tiny audio tower (laion/clap-htsat-unfused)
HTSAT_TINY: dict[str, Any] = {
    **_HTSAT_COMMON, "depths": [2, 2, 6, 2], "patch_embeds_hidden_size": 96, "hidden_size": 768,
}
#: HTSAT-base audio tower (laion/larger_clap_general, larger_clap_music(_and_speech))
HTSAT_BASE: dict[str, Any] = {
    **_HTSAT_COMMON, "depths": [2, 2, 12, 2], "patch_embeds_hidden_size": 128, "hidden_size": 1024,
}

#: ``ClapConfig`` top level (both checkpoints)
JOINT_CONFIG: dict[str, Any] = {
    "projection_dim": 512,
    "projection_hidden_act": "relu",
    "logit_scale_init_value": 14.285714285714285,
}

#: ``preprocessor_config.json`` of every non-fusion LAION checkpoint on the hub
UNFUSED_EXTRACTOR: dict[str, Any] = {
    "feature_size": 64,
    "sampling_rate": 48000,
    "hop_length": 480,
    "max_length_s": 10,
    "fft_window_size": 1024,
    "padding_value": 0.0,
    "return_attention_mask": False,
    "frequency_min": 50,
    "frequency_max": 14000,
    "top_db": None,
    "truncation": "rand_trunc",
    "padding": "repeatpad",
}


@dataclass(frozen=True)
class NamedClap:
    """A registered HF CLAP architecture and the hub repo holding its trained weights."""

    name: str
    repo: str
    audio: dict[str, Any]
    extractor: dict[str, Any] = field(default_factory=lambda: dict(UNFUSED_EXTRACTOR))

    def config_dict(self) -> dict[str, Any]:
        """Keyword arguments for ``transformers.ClapConfig``."""
        return {**JOINT_CONFIG, "text_config": dict(TEXT_CONFIG), "audio_config": dict(self.audio)}


NAMED: dict[str, NamedClap] = {
    "hf-htsat-tiny": NamedClap("hf-htsat-tiny", "laion/clap-htsat-unfused", HTSAT_TINY),
    "hf-htsat-base": NamedClap("hf-htsat-base", "laion/larger_clap_general", HTSAT_BASE),
}
