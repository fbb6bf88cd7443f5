"""The Hugging Face ClapModel family's record (:mod:`lmaczs_cli.models.families`): hub repos, fetched
into the Hugging Face cache by ``lmaczs download clap hf:<repo-id>``, or saved folders."""

from lmaczs_cli.models.records import Family

FAMILY = Family(
    "hf", ("hf:*", "hf-*"),
    "hf-htsat-tiny, hf-htsat-base, hf:<repo-id-or-folder> (Hugging Face ClapModel)",
    preflight="lmaczs_cli.models.hf.source:preflight_missing", preset="hf",
    hub_prefix="hf:", names="lmaczs_cli.models.hf.source:model_names",
)
