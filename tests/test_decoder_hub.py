"""Decoders that travel (issue #26 item 5): train -> export -> load from a folder, from a fake
Hugging Face cache and from the registry -> identical masks; tampered or foreign decoders are
refused with one line; loads never unpickle; offline hub downloads fail fast with one line."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.errors import UsageError
from tests.fake_model import FakeModel, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
SCENE = str(Path(__file__).resolve().parents[1] / "lmaczs_cli" / "assets" / "examples" / "scene.wav")
TINY = ["--data", "synth", "--synth-scenes", "8", "--val-size", "4", "--steps", "2", "--val-every", "2",
        "--batch-size", "4", "--num-workers", "0", "--device", "cpu", "--width", "16", "--quiet"]
REPO = "someone/small-decoder"


def _isolate(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Own lmaczs cache, decoder registry and Hugging Face cache; no HF variables from outside."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_HUB_OFFLINE",
                "LMACZS_DECODER", "LMACZS_OUT"):
        mp.delenv(var, raising=False)
    mp.setenv("XDG_CACHE_HOME", str(root / "xdg"))
    mp.setenv("LMACZS_DECODER_CACHE", str(root / "decoders"))
    mp.setenv("HF_HOME", str(root / "hf"))


def fake_hub(root: Path, folder: Path, repo: str = REPO, commit: str = "c0ffee12") -> Path:
    """A Hugging Face cache entry for ``repo`` (refs/main -> snapshots/<commit>) holding ``folder``."""
    base = root / "hf" / "hub" / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    shutil.copytree(folder, snap, dirs_exist_ok=True)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text(commit)
    return snap


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One tiny decoder for --clap small, trained and exported through the CLI."""
    root = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root)
        r = runner.invoke(app, ["train", "--clap", "small", *TINY[:-1], "--out", str(root / "run")])
        assert r.exit_code == 0, r.output
        train_says = r.output
        r = runner.invoke(app, ["decoder", "export", str(root / "run"), "--out", str(root / "export")])
        assert r.exit_code == 0, r.output
        assert r.stdout.strip() == str(root / "export")
    return root, train_says


@pytest.fixture
def env(trained, monkeypatch: pytest.MonkeyPatch) -> Path:
    root, _ = trained
    _isolate(monkeypatch, root)
    return root


@pytest.fixture(scope="module")
def small():
    from lmaczs_cli.models.small.model import load_small

    return load_small().eval()


def _masks(model, decoder) -> torch.Tensor:
    from lmaczs_cli.explainers import create_explainer

    ex = create_explainer("lmaczs", model, decoder=decoder)
    g = torch.Generator().manual_seed(3)
    mag = torch.rand(2, model.n_freqs, model.n_frames, generator=g)
    text = torch.nn.functional.normalize(torch.randn(2, ex.decoder.config.text_dim, generator=g), dim=-1)
    with torch.no_grad():
        return ex.masks(model, mag, text)


def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a, **k):
        raise AssertionError("torch.load was called: a decoder folder must load without unpickling")

    monkeypatch.setattr(torch, "load", refuse)


def test_export_writes_a_hub_ready_folder(env: Path, trained) -> None:
    from lmaczs_cli.decoder_hub import sha256_of

    folder = env / "export"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format"] == "lmaczs-decoder" and cfg["spec_id"]["model"] == "small"
    assert cfg["mask_domain"] == "stft"
    assert cfg["weights"]["sha256"] == sha256_of(folder / "model.safetensors")
    assert len(cfg["clap_weights"]) == 64  # sha256 of the small model's checkpoint (from run.json)
    assert cfg["training"] == [{"data": "synth", "folds": None, "seed": 0}]  # no local paths
    assert cfg["train"]["steps"] == 2 and "val_loss" in cfg["metrics"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: lmaczs\ntags:\n- lmaczs\n")
    for fact in ("`small`", cfg["clap_weights"], "stft", "| training data | synth |", "| training steps | 2",
                 "val_loss", "| sanity check | not known", cfg["weights"]["sha256"]):
        assert fact in card, fact
    # training made it the default decoder of these weights, and said so
    assert "registered as the default decoder" in trained[1]
    # never overwritten: a second export into the same folder is refused, the first one intact
    before = (folder / "config.json").read_text()
    r = runner.invoke(app, ["decoder", "export", str(env / "run" / "best.pt"), "--out", str(folder)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "never overwritten" in r.output
    assert (folder / "config.json").read_text() == before
    assert not [p for p in env.iterdir() if p.name.endswith(".part")]


def test_round_trip_gives_identical_masks(env: Path, small, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmaczs_cli.decoder_hub import registered, registry_dir

    reference = _masks(small, env / "run" / "best.pt")  # the .pt checkpoint, as today
    fake_hub(env, env / "export")
    _no_unpickling(monkeypatch)
    for decoder in (env / "export", f"hf:{REPO}", f"hf:{REPO}@c0ffee12", None):  # None: the registry
        assert torch.equal(_masks(small, decoder), reference), decoder
    assert registered(small.spec_id(), None, None) is None  # random weights never match
    assert str(registry_dir()).startswith(str(env))


def test_cli_explain_with_folder_hub_id_and_no_decoder(env: Path) -> None:
    import numpy as np

    fake_hub(env, env / "export")
    masks = {}
    for name, extra in (("pt", ["--decoder", str(env / "run" / "best.pt")]),
                        ("dir", ["--decoder", str(env / "export")]), ("hf", ["--decoder", f"hf:{REPO}"]),
                        ("auto", [])):
        out = env / f"ex_{name}"
        r = runner.invoke(app, ["explain", SCENE, "--prompt", "knock", "--clap", "small", "--device", "cpu",
                                "--save-mask", "--quiet", "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        masks[name] = np.load(next(out.rglob("mask.npy")))
    assert all(np.array_equal(masks["pt"], m) for m in masks.values())
    record = json.loads((env / "ex_auto" / "run.json").read_text())["methods"]["lmaczs"]
    assert record["decoder"].startswith(str(env / "decoders")) and record["decoder_sha256"]


def test_tampered_weights_are_refused_with_one_line(env: Path, small, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(env / "export", bad)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-3] ^= 0x01  # one bit of one weight
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(UsageError, match="does not match the sha256 in config.json"):
        _masks(small, bad)
    r = runner.invoke(app, ["explain", SCENE, "--prompt", "knock", "--clap", "small", "--device", "cpu",
                            "--decoder", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.strip().splitlines() == [
        f"lmaczs: error: {bad}: model.safetensors does not match the sha256 in config.json (tampered with "
        "or damaged); refusing to load it"]


def test_a_foreign_decoder_is_refused_with_one_line(env: Path, tmp_path: Path) -> None:
    from lmaczs_cli.checkpoints import decoder_payload
    from lmaczs_cli.decoder_hub import write_folder
    from lmaczs_cli.explainers.decoder import MaskDecoder

    fake = FakeModel()
    payload = decoder_payload(MaskDecoder.for_model(fake, "stft", width=8), fake.spec_id())
    write_folder(payload, tmp_path / "f")
    fake_hub(env, tmp_path / "f", repo="someone/fake-decoder")
    for decoder in (str(tmp_path / "f"), "hf:someone/fake-decoder"):
        r = runner.invoke(app, ["explain", SCENE, "--prompt", "knock", "--clap", "small", "--device", "cpu",
                                "--decoder", decoder, "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and "Traceback" not in r.output
        (line,) = r.output.strip().splitlines()
        assert f"{decoder}: decoder was trained for model 'fake'" in line and "not for 'small'" in line
    assert not (tmp_path / "o").exists()


def test_hub_ids_resolve_from_the_cache_only(env: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["explain", SCENE, "--prompt", "x", "--clap", "small", "--decoder",
                            "hf:nobody/nothing", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "`lmaczs download decoder hf:nobody/nothing`" in r.output
    r = runner.invoke(app, ["explain", SCENE, "--prompt", "x", "--clap", "small", "--decoder", "hf:bad",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "expected hf:ORG/REPO or hf:ORG/REPO@REVISION" in r.output


def test_preflight_finds_a_registered_decoder_without_building_the_model(env: Path, tmp_path: Path) -> None:
    from lmaczs_cli.decoder_hub import read_folder, register
    from lmaczs_cli.preflight import _decoder_missing

    monkey = pytest.MonkeyPatch()
    try:
        monkey.setenv("LMACZS_DECODER_CACHE", str(tmp_path / "reg"))
        assert _decoder_missing("laion-htsat-tiny", ["lmaczs"], {})  # nothing registered yet
        payload = read_folder(env / "export")
        payload["spec_id"] = {**payload["spec_id"], "model": "laion-htsat-tiny"}
        register(payload, "ab" * 32, "test")
        assert _decoder_missing("laion-htsat-tiny", ["lmaczs"], {}) == []
        assert _decoder_missing("laion-htsat-tiny", ["lmaczs"], {"lmaczs": {"mask_domain": "mel"}})
    finally:
        monkey.undo()


def test_other_weights_and_random_weights_are_not_matched(env: Path, small, monkeypatch) -> None:
    from lmaczs_cli.explainers.bundled import find_decoder

    source, _ = find_decoder(small, None, None)
    assert source.startswith(str(env / "decoders"))  # the trained one, before the bundled one
    # other weights under the same model name: the registered decoder is not theirs
    monkeypatch.setattr(small, "checkpoint_path", str(env / "export" / "model.safetensors"))
    assert find_decoder(small, None, None)[0].endswith("decoder.pt")  # falls back to the bundled one
    fake = FakeModel()
    with pytest.raises(UsageError, match="none is registered for random weights"):
        find_decoder(fake, None, None)


def test_decoder_list_names_the_defaults(env: Path) -> None:
    r = runner.invoke(app, ["decoder", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["model"], x["mask_domain"]) for x in rows] == [("small", "stft")]
    assert rows[0]["source"] == str((env / "run" / "best.pt").resolve())


def test_training_on_random_weights_registers_nothing(tmp_path: Path, monkeypatch) -> None:
    _isolate(monkeypatch, tmp_path)
    r = runner.invoke(app, ["train", "--clap", "fake", *TINY[:-1], "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert "not made the default decoder (it was trained on random model weights)" in r.output
    assert not (tmp_path / "decoders").exists()


def test_sanity_verdict_goes_on_the_card(env: Path, tmp_path: Path) -> None:
    from lmaczs_cli.provenance import file_sha256

    sc = tmp_path / "sanity"
    sc.mkdir()
    (sc / "summary.json").write_text(json.dumps({"pass_ssim": 0.5, "methods": [
        {"method": "lmaczs", "ssim_curve": [1.0, 0.3], "passed": True}]}))
    best = env / "run" / "best.pt"
    (sc / "run.json").write_text(json.dumps({"methods": {"lmaczs": {"decoder_sha256": file_sha256(best)}}}))
    r = runner.invoke(app, ["decoder", "export", str(best), "--sanity-check", str(sc), "--out",
                            str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    assert "| sanity check | passed the model-randomisation test (SSIM after the last block 0.3" in (
        tmp_path / "e" / "README.md").read_text()
    # a summary with the chance levels: the card says whether the shape outlives randomisation
    (sc / "summary.json").write_text(json.dumps({"pass_ssim": 0.25, "methods": [
        {"method": "lmaczs", "ssim_curve": [1.0, 0.69], "passed": False, "rank_corr_curve": [1.0, 0.48],
         "rank_corr_chance": 0.17, "ssim_chance": 0.59, "shape_kept": True,
         "mask_mean_ratio_curve": [1.0, 0.17], "empty_keeps_s_curve": [0.0, 0.92]}]}))
    r = runner.invoke(app, ["decoder", "export", str(best), "--sanity-check", str(sc), "--out",
                            str(tmp_path / "e3")])
    assert r.exit_code == 0, r.output
    card = (tmp_path / "e3" / "README.md").read_text()
    assert "FAILED the model-randomisation test (SSIM after the last block 0.69" in card
    assert "maps keep the intact maps' shape beyond chance (rank correlation 0.48, chance 0.17" in card
    assert json.loads((tmp_path / "e3" / "config.json").read_text())["sanity_check"]["shape_kept"] is True
    assert "mask mean is 0.17 x the intact maps', and the randomised model hears no evidence in 92 %" in card
    (sc / "run.json").write_text(json.dumps({"methods": {"lmaczs": {"decoder_sha256": "0" * 64}}}))
    r = runner.invoke(app, ["decoder", "export", str(best), "--sanity-check", str(sc), "--out",
                            str(tmp_path / "e2")])
    assert r.exit_code == 2 and "ran another decoder" in r.output and not (tmp_path / "e2").exists()


def test_download_decoder_fills_the_cache_and_registers(env: Path, small, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    import lmaczs_cli.downloads.hf as hf

    monkeypatch.setenv("LMACZS_DECODER_CACHE", str(tmp_path / "reg"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hf, "check_reachable", lambda url, timeout=5.0: None)

    def snapshot_download(repo_id, revision=None, allow_patterns=(), cache_dir=None, force_download=False):
        assert set(allow_patterns) == {"config.json", "model.safetensors", "README.md"}
        return str(fake_hub(tmp_path, env / "export", repo=repo_id))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    r = runner.invoke(app, ["download", "decoder", "hf:someone/dl"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().endswith("snapshots/c0ffee12")
    assert "is now the default stft decoder for --clap small" in r.stderr
    _no_unpickling(monkeypatch)
    from lmaczs_cli.explainers.bundled import find_decoder

    assert find_decoder(small, None, None)[0].startswith(str(tmp_path / "reg"))
    assert torch.equal(_masks(small, None), _masks(small, "hf:someone/dl"))


@pytest.mark.parametrize("what", ["clap", "decoder"])
def test_offline_hub_downloads_fail_fast_with_one_line(what: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    _isolate(monkeypatch, tmp_path)

    def no_network(*a, **k):
        raise socket.gaierror(-2, "Name or service not known")

    def not_called(*a, **k):
        raise AssertionError("huggingface_hub must not be asked (it would retry for ~24 s)")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", not_called)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_called)
    t0 = time.monotonic()
    r = runner.invoke(app, ["download", what, "hf:someone/thing"])
    assert time.monotonic() - t0 < 5
    assert r.exit_code == 1 and "Retry" not in r.output and "Traceback" not in r.output
    assert r.output.strip().splitlines() == [
        "lmaczs: error: cannot reach huggingface.co:443 (Name or service not known); check the network "
        "connection (or HTTPS_PROXY) and run the command again"]
