"""Data set loaders on fixtures in the real layouts, the registry, label lists, and real ESC-50 clips."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest

from lmaczs_cli.data import prompts as L
from lmaczs_cli.data.audiocaps import load_audiocaps
from lmaczs_cli.data.clotho import load_clotho
from lmaczs_cli.data.esc50 import load_esc50
from lmaczs_cli.data.items import AudioItem, LoadReport
from lmaczs_cli.data.manifest import load_manifest
from lmaczs_cli.data.registry import DATASET_NAMES, LOADERS, load_dataset, parse_folds
from lmaczs_cli.data.us8k import load_us8k
from lmaczs_cli.errors import UsageError
from tests.fixtures_data import (
    AUDIOCAPS_CLIPS,
    CLOTHO_FILES,
    ESC50_ROWS,
    US8K_ROWS,
    clotho_captions,
    make_audiocaps,
    make_clotho,
    make_esc50,
    make_manifest,
    make_us8k,
    write_clip,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
ESC50_MINI = SHARED / "data" / "esc50-mini"


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- ESC-50 -------------------------------------------------------------------------
def test_esc50_items_labels_and_meta(tmp_path: Path) -> None:
    rep = load_esc50(make_esc50(tmp_path))
    assert isinstance(rep, LoadReport) and rep.missing == []
    assert len(rep) == len(ESC50_ROWS) == 10
    assert [Path(i.path).name for i in rep.items] == [r[0] for r in ESC50_ROWS]
    baby = next(i for i in rep.items if i.meta["target"] == 20)
    assert baby.label == "crying baby" and baby.texts == ("crying baby",)
    assert baby.meta == {"fold": 3, "target": 20, "category": "crying_baby", "esc10": True,
                         "src_file": "151081", "take": "A"}  # fmt: skip
    assert Path(baby.path) == tmp_path / "audio" / "3-151081-A-20.wav"
    # every label is found in the built-in list at its target index
    assert all(L.ESC50_LABELS[i.meta["target"]] == i.label for i in rep.items)


def test_esc50_folds_and_esc10(tmp_path: Path) -> None:
    root = make_esc50(tmp_path)
    assert {i.meta["fold"] for i in load_esc50(root, folds=[1, 5]).items} == {1, 5}
    assert len(load_esc50(root, folds=[1, 5])) == 4
    assert len(load_esc50(root, folds=3)) == 2
    esc10 = load_esc50(root, esc10=True)
    assert len(esc10) == 6 and all(i.meta["esc10"] for i in esc10.items)
    assert {i.label for i in esc10.items} <= set(L.ESC10_LABELS)
    both = load_esc50(root, folds=[5], esc10=True)
    assert [i.label for i in both.items] == ["rooster", "dog"]
    with pytest.raises(UsageError, match="folds 1-5.*6"):
        load_esc50(root, folds=[1, 6])


def test_esc50_missing_files_are_counted(tmp_path: Path) -> None:
    root = make_esc50(tmp_path, missing=("2-102414-A-17.wav", "4-181286-A-10.wav"))
    rep = load_esc50(root)
    assert len(rep) == 8
    assert rep.missing == [
        str(root / "audio" / "2-102414-A-17.wav"),
        str(root / "audio" / "4-181286-A-10.wav"),
    ]
    assert "2 listed but missing" in rep.summary()
    # only the selected folds' missing files are reported
    assert load_esc50(root, folds=[1]).missing == []


def test_esc50_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        load_esc50(tmp_path / "nope")
    assert "nope" in _one_line(e) and "not found" in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as e:
        load_esc50(empty)
    assert _one_line(e) == (
        f"{empty / 'meta' / 'esc50.csv'} not found: is --data-root an ESC-50 folder (meta/esc50.csv, audio/)?"
    )
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        load_esc50(f)
    # CSV without the expected columns
    bad = tmp_path / "bad"
    (bad / "meta").mkdir(parents=True)
    (bad / "audio").mkdir()
    (bad / "meta" / "esc50.csv").write_text("name,label\na.wav,dog\n")
    with pytest.raises(UsageError) as e:
        load_esc50(bad)
    assert "missing column(s) filename, fold, target, category, esc10" in _one_line(e)
    # no audio/ folder
    make_esc50(tmp_path / "noaudio")
    for p in (tmp_path / "noaudio" / "audio").iterdir():
        p.unlink()
    (tmp_path / "noaudio" / "audio").rmdir()
    with pytest.raises(UsageError, match="audio not found"):
        load_esc50(tmp_path / "noaudio")


def test_esc50_bad_fold_value_names_line(tmp_path: Path) -> None:
    root = make_esc50(tmp_path)
    csv = root / "meta" / "esc50.csv"
    lines = csv.read_text().splitlines()
    lines[3] = lines[3].replace(",2,", ",two,", 1)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"esc50.csv: line 4: fold 'two' is not an integer"):
        load_esc50(root)


def test_all_listed_files_missing_is_a_usage_error(tmp_path: Path) -> None:
    root = make_esc50(tmp_path, missing=[r[0] for r in ESC50_ROWS])
    with pytest.raises(UsageError, match="none of the 10 clips listed in .*esc50.csv were found"):
        load_esc50(root)


def test_esc50_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    root = make_esc50(tmp_path)
    csv = root / "meta" / "esc50.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert len(load_esc50(root)) == 10


# -- UrbanSound8K --------------------------------------------------------------------
def test_us8k_items_folds_labels(tmp_path: Path) -> None:
    root = make_us8k(tmp_path)
    rep = load_us8k(root)
    assert len(rep) == len(US8K_ROWS) and rep.missing == []
    first = rep.items[0]
    assert Path(first.path) == root / "audio" / "fold1" / "100032-3-0-0.wav"
    assert first.label == "dog bark" and first.texts == ("dog bark",)
    assert first.meta["class_id"] == 3 and first.meta["class"] == "dog_bark" and first.meta["fold"] == 1
    assert all(L.US8K_LABELS[i.meta["class_id"]] == i.label for i in rep.items)
    assert [i.meta["fold"] for i in load_us8k(root, folds=[10]).items] == [10, 10]
    assert len(load_us8k(root, folds=range(1, 4))) == 4
    with pytest.raises(UsageError, match="folds 1-10; got fold"):
        load_us8k(root, folds=[0])


def test_us8k_missing_and_bad_root(tmp_path: Path) -> None:
    root = make_us8k(tmp_path / "u", missing=("103074-7-0-0.wav",))
    rep = load_us8k(root)
    assert len(rep) == len(US8K_ROWS) - 1
    assert rep.missing == [str(root / "audio" / "fold7" / "103074-7-0-0.wav")]
    # fold 7's only clip is missing: that fold alone is an error, not an empty set
    with pytest.raises(UsageError, match="none of the 1 clips"):
        load_us8k(root, folds=[7])
    with pytest.raises(UsageError) as e:
        load_us8k(make_esc50(tmp_path / "esc"))
    assert "metadata/UrbanSound8K.csv not found: is --data-root an UrbanSound8K folder" in _one_line(e)


# -- Clotho --------------------------------------------------------------------------
def test_clotho_odd_file_names_and_five_captions(tmp_path: Path) -> None:
    root = make_clotho(tmp_path)
    rep = load_clotho(root)
    assert [Path(i.path).name for i in rep.items] == CLOTHO_FILES
    for item in rep.items:
        assert Path(item.path).is_file()
        assert item.texts == tuple(clotho_captions(Path(item.path).name))
        assert len(item.texts) == 5 and item.label is None
        assert item.meta["split"] == "development"


def test_clotho_splits_missing_and_aliases(tmp_path: Path) -> None:
    root = make_clotho(tmp_path, "evaluation", missing=(CLOTHO_FILES[1],))
    rep = load_clotho(root, split="evaluation")
    assert len(rep) == 3 and rep.missing == [str(root / "evaluation" / CLOTHO_FILES[1])]
    assert load_clotho(root, split="test").missing == rep.missing
    with pytest.raises(UsageError, match="clotho_captions_development.csv not found"):
        load_clotho(root)
    with pytest.raises(UsageError, match="Clotho split 'training'"):
        load_clotho(root, split="training")


def test_clotho_matches_names_across_unicode_normalisation(tmp_path: Path) -> None:
    root = make_clotho(tmp_path)
    # the folder holds the decomposed (NFD) spelling, as macOS copies do; the CSV the composed one
    src = root / "development" / CLOTHO_FILES[1]
    src.rename(root / "development" / unicodedata.normalize("NFD", CLOTHO_FILES[1]))
    rep = load_clotho(root)
    assert len(rep) == 4 and rep.missing == []
    assert Path(rep.items[1].path).exists()


# -- AudioCaps -----------------------------------------------------------------------
def test_audiocaps_wav_flac_missing_and_captions(tmp_path: Path) -> None:
    root = make_audiocaps(tmp_path)
    rep = load_audiocaps(root)
    present = [c for c in AUDIOCAPS_CLIPS if c[3] is not None]
    assert len(rep) == len(present) == 3
    assert [Path(i.path).name for i in rep.items] == [f"{y}_{s}.{k}" for y, s, _, k in present]
    rain = rep.items[1]
    assert rain.path.endswith(".flac") and rain.texts == (
        "Rain falls on a roof",
        "Rain patters, thunder rumbles",
    )
    assert rain.meta["audiocap_ids"] == ("1001", "1002") and rain.label is None
    assert rep.missing == [
        str(root / "audio" / "train" / "zzDx1r2b3Q0_170.wav"),
        str(root / "audio" / "train" / "Qq0_missing_10.wav"),
    ]


def test_audiocaps_split_and_errors(tmp_path: Path) -> None:
    root = make_audiocaps(tmp_path, "val")
    assert len(load_audiocaps(root, split="val")) == 3
    with pytest.raises(UsageError, match=r"train.csv not found: is --data-root an AudioCaps folder"):
        load_audiocaps(root)
    (root / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\n")
    with pytest.raises(UsageError, match=r"audio/test not found"):
        load_audiocaps(root, split="test")
    with pytest.raises(UsageError, match="AudioCaps split 'dev'"):
        load_audiocaps(root, split="dev")


# -- manifest ------------------------------------------------------------------------
def test_manifest_relative_paths_merge_and_missing(tmp_path: Path) -> None:
    csv = make_manifest(tmp_path / "m")
    rep = load_manifest(csv)
    assert len(rep) == 3
    a, b, c = rep.items
    assert Path(a.path) == tmp_path / "m" / "clips" / "a one.wav"
    assert a.texts == ("a dog barks", "a dog barks twice") and a.label == "dog"
    assert b.texts == ("rain",) and b.label == "rain" and b.meta == {"split": "test"}
    assert Path(c.path) == tmp_path / "m-outside" / "c.wav"
    assert rep.missing == [str(tmp_path / "m" / "clips" / "not-there.wav")]


def test_manifest_resolves_against_csv_folder_not_cwd(tmp_path: Path, monkeypatch) -> None:
    make_manifest(tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    assert len(load_manifest(Path("m") / "manifest.csv")) == 3


def test_manifest_split_filter(tmp_path: Path) -> None:
    csv = make_manifest(tmp_path / "m")
    train = load_manifest(csv, split="train")
    assert [Path(i.path).name for i in train.items] == ["a one.wav", "c.wav"] and train.missing == []
    test = load_manifest(csv, split="test")
    assert len(test) == 1 and len(test.missing) == 1
    with pytest.raises(UsageError, match=r"no rows with split 'val' \(splits present: test, train\)"):
        load_manifest(csv, split="val")


def test_manifest_errors(tmp_path: Path) -> None:
    write_clip(tmp_path / "x.wav")
    cases = {
        "path\nx.wav\n": "no caption or label column",
        "file,caption\nx.wav,hi\n": "missing column(s) path",
        "path,caption\n": "no rows",
        "path,caption\n,hello\n": "line 2: empty path",
        "path,caption,label\nx.wav,,\n": "line 2: x.wav: neither caption nor label",
        "path,label\nx.wav,dog\nx.wav,cat\n": "line 3: x.wav has labels 'dog' and 'cat'",
    }
    for i, (text, expected) in enumerate(cases.items()):
        f = tmp_path / f"m{i}.csv"
        f.write_text(text)
        with pytest.raises(UsageError) as e:
            load_manifest(f)
        assert expected in _one_line(e), (text, str(e.value))
    ok = tmp_path / "ok.csv"
    ok.write_text("path,caption\nx.wav,hi\n")
    with pytest.raises(UsageError, match="no split column"):
        load_manifest(ok, split="train")
    with pytest.raises(UsageError, match="nope.csv not found"):
        load_manifest(tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="is a folder"):
        load_manifest(tmp_path)


# -- registry ------------------------------------------------------------------------
def test_registry_dispatch_and_option_checks(tmp_path: Path) -> None:
    assert DATASET_NAMES == ("synth", "esc50", "us8k", "clotho", "audiocaps", "manifest", "urbansed",
                             "audiogrounding", "strong")
    assert set(LOADERS) >= set(DATASET_NAMES)
    esc = make_esc50(tmp_path / "esc")
    assert len(load_dataset("esc50", esc, folds=[1], esc10=True)) == 1
    assert len(load_dataset("ESC50", str(esc))) == 10
    assert len(load_dataset("us8k", make_us8k(tmp_path / "us"), folds=[1])) == 2
    assert len(load_dataset("clotho", make_clotho(tmp_path / "cl", "validation"), split="val")) == 4
    assert len(load_dataset("audiocaps", make_audiocaps(tmp_path / "ac"))) == 3
    assert len(load_dataset("manifest", make_manifest(tmp_path / "mf"), split="train")) == 2
    with pytest.raises(UsageError, match="unknown data set .esc100.: expected one of synth, esc50, us8k"):
        load_dataset("esc100", esc)
    with pytest.raises(UsageError, match="--split does not apply to data set esc50"):
        load_dataset("esc50", esc, split="train")
    with pytest.raises(UsageError, match="--esc10 does not apply to data set us8k"):
        load_dataset("us8k", tmp_path / "us", esc10=True)
    with pytest.raises(UsageError, match="--folds does not apply to data set clotho"):
        load_dataset("clotho", tmp_path / "cl", folds=[1])


def test_parse_folds() -> None:
    assert parse_folds("1,2,5") == [1, 2, 5]
    assert parse_folds("1-3, 5") == [1, 2, 3, 5]
    assert parse_folds(None) is None and parse_folds(" ") is None
    with pytest.raises(UsageError, match="--folds 'a'"):
        parse_folds("a")
    with pytest.raises(UsageError):
        parse_folds("4-2")


def test_items_are_hashable_and_frozen() -> None:
    a = AudioItem("x.wav", ("t",), "t", {"fold": 1})
    assert hash(a) == hash(AudioItem("x.wav", ("t",), "t", {"fold": 2}))
    with pytest.raises(AttributeError):
        a.path = "y.wav"  # type: ignore[misc]


def test_data_package_import_is_light() -> None:
    import subprocess

    code = (
        "import sys; import lmaczs_cli.data, lmaczs_cli.data.registry, lmaczs_cli.data.prompts;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- labels --------------------------------------------------------------------------
def test_builtin_label_sets() -> None:
    assert len(L.ESC50_CATEGORIES) == 50 and len(set(L.ESC50_CATEGORIES)) == 50
    assert L.ESC50_CATEGORIES[0] == "dog" and L.ESC50_CATEGORIES[20] == "crying_baby"
    assert L.ESC50_CATEGORIES[49] == "hand_saw"
    assert L.load_labels("esc50")[20] == "crying baby"
    assert L.load_labels("ESC10") == list(L.ESC10_LABELS)
    assert set(L.ESC10_CATEGORIES) <= set(L.ESC50_CATEGORIES)
    assert L.load_labels("us8k") == [
        "air conditioner", "car horn", "children playing", "dog bark", "drilling",
        "engine idling", "gun shot", "jackhammer", "siren", "street music",
    ]  # fmt: skip
    assert L.prompt_for("crying baby") == "this is a sound of crying baby"
    assert L.prompt_for("rain", "a recording of {label}") == "a recording of rain"
    assert L.prompt_for("rain", "{{raw}} {label}") == "{raw} rain"  # doubled braces are literal
    for bad in ("no placeholder", "a {}", "a {label} {other}", "a {label"):
        with pytest.raises(UsageError, match="must contain|label's place"):
            L.prompt_for("rain", bad)


def test_label_file(tmp_path: Path) -> None:
    f = tmp_path / "labels.txt"
    f.write_text("# my classes\n\nlaser zap\n  purring cat  \nlaser zap\n# end\n", encoding="utf-8")
    assert L.load_labels(str(f)) == ["laser zap", "purring cat"]
    with pytest.raises(UsageError) as e:
        L.load_labels(str(tmp_path / "none.txt"))
    assert "not a built-in set (esc50, esc10, us8k, synth) and no such file" in _one_line(e)
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(UsageError, match="no labels in file"):
        L.load_labels(tmp_path / "empty.txt")


# -- the real ESC-50 clips in ../shared -----------------------------------------------
def test_real_esc50_mini() -> None:
    if not (ESC50_MINI / "meta" / "esc50.csv").exists():
        pytest.skip("../shared/data/esc50-mini is not present")
    rep = load_esc50(ESC50_MINI)
    assert len(rep) == 50 and rep.missing == []
    by_target = {i.meta["target"]: i for i in rep.items}
    assert sorted(by_target) == list(range(50))
    for t, item in by_target.items():
        assert item.meta["category"] == L.ESC50_CATEGORIES[t]
        assert item.label == L.ESC50_LABELS[t] == item.texts[0]
        assert Path(item.path).parent == ESC50_MINI / "audio"
    assert len(load_esc50(ESC50_MINI, esc10=True)) == 10
    assert {i.meta["category"] for i in load_esc50(ESC50_MINI, esc10=True).items} == set(L.ESC10_CATEGORIES)


def test_synth_folder_loads_with_ground_truth_masks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app

    out = tmp_path / "syn"
    r = CliRunner().invoke(app, ["synth", "--out", str(out), "--n", "10", "--seed", "3"])
    assert r.exit_code == 0, r.output
    rep = load_dataset("synth", out)
    assert len(rep.items) == 10 and not rep.missing
    for it in rep.items:
        gt = Path(it.meta["gt_masks"])
        assert gt.is_file() and it.label
        import numpy as np

        with np.load(gt) as z:
            assert it.label in z.files  # the label is one of the scene's events
    assert {it.meta["split"] for it in load_dataset("synth", out, split="train").items} == {"train"}
    with pytest.raises(UsageError, match="lmaczs synth"):
        load_dataset("synth", tmp_path)
