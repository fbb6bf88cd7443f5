"""Model families as records (issue #28 item 1, first step): preflight and training presets are
derived from a family's record, so a new family is one record (no switch elsewhere)."""

from __future__ import annotations

import pytest

from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.train.presets import PRESETS, preset_for_model
from lmaczs_cli.models import families, registry
from lmaczs_cli.models.families import Family, family_of, register_family
from lmaczs_cli.preflight import check_ready
from lmaczs_cli.runtime import RunOptions


def toy_missing(clap: str, ckpt, tokenizer_dir) -> list[str]:
    return [] if str(ckpt) == "random" else [f"the {clap} weights (`lmaczs download clap {clap}`)"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(families, "_FAMILIES", dict(families._FAMILIES))
    monkeypatch.setitem(registry._PREFIXES, "toy-", ("tests.fake_model:build_fake", "a toy", "NAME"))
    register_family(Family("toy", ("toy-*",), "toy models for tests",
                           preflight="tests.test_model_families:toy_missing", preset="small"))
    return "toy-1"


def test_a_toy_family_gets_preflight_and_a_preset_from_its_record(toy: str) -> None:
    assert family_of(toy).name == "toy" and preset_for_model(toy) == "small"
    with pytest.raises(UsageError) as e:
        check_ready("run baselines", RunOptions(clap=toy), ["gradcam"])
    assert "the toy-1 weights (`lmaczs download clap toy-1`)" in str(e.value)
    check_ready("run baselines", RunOptions(clap=toy, clap_ckpt="random"), ["gradcam"])  # nothing missing


def test_the_builtin_families_keep_their_presets() -> None:
    want = {"small": "small", "laion-htsat-tiny": "laion", "laion-htsat-base": "laion",
            "ms-clap-2022": "ms-clap-2022", "ms-clap-2023": "ms-clap-2023", "hf-htsat-tiny": "hf",
            "hf:laion/clap-htsat-unfused": "hf", "fake": None}
    assert {name: preset_for_model(name) for name in want} == want
    assert all(f.preset is None or f.preset in PRESETS for f in families.list_families())
    for name in registry.list_models():  # every model lmaczs ships belongs to a family
        if registry._MODELS[name].startswith("lmaczs_cli."):
            assert family_of(name) is not None, name
