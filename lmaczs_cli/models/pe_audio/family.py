"""The PE-Audio family's record (:mod:`lmaczs_cli.models.families`): a saved folder or a cached hub repo."""

from lmaczs_cli.models.records import Family

FAMILY = Family(
    "pe-audio", ("pe-audio", "pe-audio:*"),
    "pe-audio, pe-audio:<repo-id-or-folder> (Meta Perception Encoder audio, PeAudioModel)",
    preflight="lmaczs_cli.models.pe_audio.model:preflight_missing", preset="hf",
)
