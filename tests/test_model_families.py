"""Model families as records (issue #28 item 1): preflight, the download catalogue, the ``--clap`` help
and training presets are derived from a family's record, so a new family is one record and its folder
(no switch elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmaczs_cli.cli.options import Clap  # its help is read at import, before any toy family
from lmaczs_cli.errors import UsageError
from lmaczs_cli.jobs.train.presets import PRESETS, preset_for_model
from lmaczs_cli.models import families, registry
from lmaczs_cli.models.families import Artifact, Family, clap_help, family_of, register_family
from lmaczs_cli.preflight import check_ready
from lmaczs_cli.runtime import RunOptions


def toy_missing(clap: str, ckpt, tokenizer_dir) -> list[str]:
    return [] if str(ckpt) == "random" else [f"the {clap} weights (`lmaczs download clap {clap}`)"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(families, "_FAMILIES", dict(families._FAMILIES))
    monkeypatch.setitem(registry._PREFIXES, "toy-", ("tests.fake_model:build_fake", "a toy", "NAME"))
    register_family(Family(
        "toy", ("toy-*",), "toy-1 (toy models for tests)", preflight="tests.test_model_families:toy_missing",
        preset="small", checkpoints=(Artifact("toy-1.bin", "http://127.0.0.1:9/toy-1.bin", 3, None,
                                               "toy weights (toy-1)"),),
        aliases={"toy-1": "toy-1.bin"}, tokenizers={"toy-bpe": (Artifact("toy.txt", "http://127.0.0.1:9/t"),)}))
    return "toy-1"


def test_a_toy_family_gets_preflight_and_a_preset_from_its_record(toy: str) -> None:
    assert family_of(toy).name == "toy" and preset_for_model(toy) == "small"
    with pytest.raises(UsageError) as e:
        check_ready("run baselines", RunOptions(clap=toy), ["gradcam"])
    assert "the toy-1 weights (`lmaczs download clap toy-1`)" in str(e.value)
    check_ready("run baselines", RunOptions(clap=toy, clap_ckpt="random"), ["gradcam"])  # nothing missing


def test_a_toy_family_gets_a_download_listing_and_a_clap_help_line(toy: str, tmp_path: Path) -> None:
    from lmaczs_cli.cli.app import app
    from lmaczs_cli.cli.options import _checkpoint_names, _tokenizer_names
    from lmaczs_cli.downloads.models import clap_artifact, tokenizer_files

    assert "toy-1 (toy models for tests)" in clap_help()
    res = CliRunner().invoke(app, ["download", "clap", "--list"], env={"XDG_CACHE_HOME": str(tmp_path)})
    assert res.exit_code == 0 and "toy-1.bin\ttoy weights (toy-1)" in res.stdout.splitlines()
    assert clap_artifact(toy).url == "http://127.0.0.1:9/toy-1.bin"  # `lmaczs download clap toy-1`
    assert _checkpoint_names("toy") == ["toy-1", "toy-1.bin"] and _tokenizer_names("toy") == ["toy-bpe"]
    assert set(tokenizer_files("toy-bpe")) == {"toy.txt"}


def test_the_clap_help_is_one_line_per_builtin_family() -> None:
    assert Clap.__metadata__[0].help == clap_help()
    for family in families.list_families():
        assert family.help and family.help in clap_help()
    for name in registry.list_models():  # every model lmaczs ships is named in --clap's help
        if registry._MODELS[name].startswith("lmaczs_cli."):
            assert name in clap_help(), name


#: ``--decoder hf:ORG/REPO`` (a decoder repo, not a model family) may test the hub prefix
_NOT_A_FAMILY = {"decoder_hub.py": "hf:"}


def test_no_family_name_switch_outside_models() -> None:
    """Code outside ``models/`` asks a family's record; it never tests a model name or its prefix."""
    pkg = Path(__file__).resolve().parents[1] / "lmaczs_cli"
    names = {p.split("*")[0].split("<")[0] for f in families.list_families() for p in f.patterns}
    names |= set(registry.list_models()) | {n for f in families.list_families() for n in f.aliases}
    names = {n for n in names if n and n != "fake"}
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    switch = re.compile(rf"""(startswith|removeprefix|endswith)\(\(?\s*["']({alt})|[!=]=\s*["']({alt})["']"""
                        rf"""|\bin\s*[(\[{{]\s*["']({alt})["']""")
    found = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        if rel.parts[0] == "models":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            m = switch.search(line)
            if m and _NOT_A_FAMILY.get(str(rel)) not in m.groups():
                found.append(f"{rel}:{i}: {line.strip()}")
    assert found == []


def test_the_switch_check_catches_one() -> None:  # the check above can fail
    alt = "laion|hf:"
    switch = re.compile(rf"""(startswith|removeprefix|endswith)\(\(?\s*["']({alt})|[!=]=\s*["']({alt})["']""")
    assert switch.search('if clap.startswith("laion"):') and switch.search("if clap == 'hf:':")


def test_the_builtin_families_keep_their_presets() -> None:
    want = {"small": "small", "laion-htsat-tiny": "laion", "laion-htsat-base": "laion",
            "ms-clap-2022": "ms-clap-2022", "ms-clap-2023": "ms-clap-2023", "hf-htsat-tiny": "hf",
            "hf:laion/clap-htsat-unfused": "hf", "fake": None}
    assert {name: preset_for_model(name) for name in want} == want
    assert all(f.preset is None or f.preset in PRESETS for f in families.list_families())
    for name in registry.list_models():  # every model lmaczs ships belongs to a family
        if registry._MODELS[name].startswith("lmaczs_cli."):
            assert family_of(name) is not None, name
