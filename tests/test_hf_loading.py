"""Hugging Face CLAP: loading from folders and the HF cache offline, `download clap hf:...`,
clear one-line errors, and the registry's ``hf:`` prefix."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.hf.source import files_to_fetch, resolve_hf_source
from lmaczs_cli.models.registry import create_model, describe_models, list_models
from tests.helpers_hf import fake_hub_cache, save_random_clap

REPO = Path(__file__).resolve().parents[1]
HUB_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_HOME", "HF_HUB_OFFLINE")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_clap(tmp_path_factory.mktemp("clap") / "my-clap", seed=0)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache that the code must find through the environment."""
    for var in HUB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every socket connect / DNS lookup raises and is recorded (libraries may swallow the error)."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[1:2] or args[:1]))
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def _mag(model, seconds: float = 2.0) -> torch.Tensor:
    t = torch.arange(int(seconds * model.sample_rate)) / model.sample_rate
    wave = model.fit_window(0.3 * torch.sin(2 * torch.pi * 700 * t)).wave
    return model.spectrogram(wave[None])[0]


@pytest.mark.slow
def test_building_and_loading_open_no_socket(saved: Path, hub: Path, no_network) -> None:
    with pytest.warns(UserWarning, match="RANDOM weights .* stub text tokenizer"):
        create_model("hf-htsat-tiny", ckpt="random", seed=0)
    from_folder = create_model(f"hf:{saved}")
    fake_hub_cache(hub, "acme/my-clap", saved)
    from_cache = create_model("hf:acme/my-clap")
    assert from_folder.name == f"hf:{saved}" and from_cache.name == "hf:acme/my-clap"
    cached = from_cache.clap.state_dict()
    assert all(torch.equal(v, cached[k]) for k, v in from_folder.clap.state_dict().items())
    with torch.no_grad():
        a, b = from_folder.encode(_mag(from_folder)), from_cache.encode(_mag(from_cache))
    assert torch.allclose(a.embedding, b.embedding, atol=1e-6)
    assert torch.allclose(from_folder.embed_text(["rain"]), from_cache.embed_text(["rain"]), atol=1e-6)
    assert no_network == []


def test_the_network_guard_sees_swallowed_attempts(no_network: list[str]) -> None:
    """Negative control: a library that turns the refused connection into its own error
    (urllib: URLError) still leaves the attempt on record."""
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("https://huggingface.co/api/models/laion/clap-htsat-unfused", timeout=5)
    assert no_network


@pytest.mark.slow
def test_loaded_folder_is_the_saved_model(saved: Path, tmp_path: Path) -> None:
    """Weights, extractor settings and tokenizer all come from the folder; pytorch_model.bin
    loads like safetensors; spec_id follows the weights."""
    from transformers import ClapModel

    model = create_model(f"hf:{saved}")
    ref = ClapModel.from_pretrained(str(saved), local_files_only=True)
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in model.clap.state_dict().items())
    assert (model.truncation, model.padding, model.n_mels) == ("rand_trunc", "repeatpad", 64)
    assert model.tokenizer(["rain"])["input_ids"][0][0] == 0  # the stub's <s>
    bin_dir = tmp_path / "bin"
    shutil.copytree(saved, bin_dir)
    (bin_dir / "model.safetensors").unlink()
    torch.save(ref.state_dict(), bin_dir / "pytorch_model.bin")
    from_bin = create_model(f"hf:{bin_dir}")
    assert from_bin.spec_id()["weights"] == model.spec_id()["weights"]
    half = tmp_path / "half"
    shutil.copytree(saved, half)
    ref.half().save_pretrained(str(half))  # a checkpoint stored in float16 runs in float32
    from_half = create_model(f"hf:{half}")
    assert all(p.dtype == torch.float32 for p in from_half.parameters())
    other = create_model(f"hf:{save_random_clap(tmp_path / 'other', seed=1)}")
    assert other.spec_id()["weights"] != model.spec_id()["weights"]
    assert other.spec_id()["model"] != model.spec_id()["model"]
    with pytest.warns(UserWarning, match="RANDOM weights"):
        rnd = create_model(f"hf:{saved}", ckpt="random", seed=5)
    assert rnd.source == "random" and rnd.spec_id()["weights"] != model.spec_id()["weights"]


def test_missing_repo_and_files_are_one_line_errors(saved: Path, hub: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        create_model("hf:acme/absent")
    msg = str(e.value)
    assert "\n" not in msg and str(hub) in msg and "`lmaczs download clap hf:acme/absent`" in msg
    with pytest.raises(UsageError, match="no such folder"):
        create_model("hf:./nowhere")
    with pytest.raises(UsageError, match=r"hf:laion/clap-htsat-unfused: not in the Hugging Face cache .*"
                                         r"\(--clap hf-htsat-tiny loads laion/clap-htsat-unfused; "
                                         r"--clap-ckpt random builds untrained weights offline\)$"):
        create_model("hf-htsat-tiny")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(saved / "config.json", partial)
    with pytest.raises(UsageError, match=r"lacks feature-extractor settings .*, weights .*tokenizer files"
                                         r".*save_pretrained"):
        create_model(f"hf:{partial}")
    fake_hub_cache(hub, "acme/partial", partial)
    with pytest.raises(UsageError, match=r"lacks .* run `lmaczs download clap hf:acme/partial`"):
        create_model("hf:acme/partial")
    with pytest.raises(UsageError, match="needs a repo id or a folder"):
        create_model("hf:")


def test_ckpt_option_and_foreign_folders_are_refused(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not apply to --clap hf:"):
        create_model(f"hf:{saved}", ckpt="630k-audioset-best.pt")
    with pytest.raises(UsageError, match="--clap hf-htsat-tiny takes no --clap-ckpt .* or 'random'"):
        create_model("hf-htsat-tiny", ckpt="/some/file.pt")
    bert = tmp_path / "bert"
    shutil.copytree(saved, bert)
    cfg = json.loads((bert / "config.json").read_text())
    (bert / "config.json").write_text(json.dumps({**cfg, "model_type": "bert"}))
    with pytest.raises(UsageError, match="model_type 'bert', not 'clap'"):
        create_model(f"hf:{bert}")


@pytest.mark.slow
def test_older_checkpoints_without_recomputed_buffers_load(saved: Path, tmp_path: Path) -> None:
    """Index/id buffers (rebuilt from the config) may be absent; a missing weight is refused."""
    from safetensors.torch import load_file, save_file

    sd = load_file(str(saved / "model.safetensors"))
    old = tmp_path / "old"
    shutil.copytree(saved, old)
    lean = {k: v for k, v in sd.items()
            if not k.endswith(("position_ids", "token_type_ids", "relative_position_index"))}
    assert len(lean) < len(sd)
    save_file(lean, str(old / "model.safetensors"), metadata={"format": "pt"})
    a, b = create_model(f"hf:{saved}"), create_model(f"hf:{old}")
    assert all(torch.equal(v, b.clap.state_dict()[k]) for k, v in a.clap.state_dict().items())
    with torch.no_grad():
        assert torch.allclose(a.encode(_mag(a)).embedding, b.encode(_mag(b)).embedding, atol=1e-6)
    assert torch.allclose(a.embed_text(["rain"]), b.embed_text(["rain"]), atol=1e-6)
    del lean["audio_model.audio_encoder.batch_norm.running_mean"]
    save_file(lean, str(old / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UsageError, match="1 missing or mismatched, e.g. audio_model.audio_encoder.batch"):
        create_model(f"hf:{old}")


@pytest.mark.slow
def test_weights_that_do_not_fit_are_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["projection_dim"] = 32
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UsageError) as e:
        create_model(f"hf:{bad}")
    assert str(e.value).startswith(f"{bad}:") and "\n" not in str(e.value)


def test_repo_id_and_folder_resolution(saved: Path, hub: Path, tmp_path: Path, monkeypatch) -> None:
    src = resolve_hf_source(str(saved))
    assert src.folder == saved and src.repo_id is None
    snap = fake_hub_cache(hub, "acme/my-clap", saved)
    assert resolve_hf_source("acme/my-clap").folder == snap
    monkeypatch.chdir(tmp_path)  # a folder of the same name wins over the cache
    shutil.copytree(saved, tmp_path / "acme" / "my-clap", symlinks=True)
    assert resolve_hf_source("acme/my-clap").repo_id is None


# -- what `lmaczs download clap hf:...` fetches ---------------------------------------


def test_download_picks_safetensors_and_the_processor_files() -> None:
    listing = ["README.md", ".gitattributes", "config.json", "preprocessor_config.json",
               "pytorch_model.bin", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "vocab.json", "merges.txt", "special_tokens_map.json", "flax_model.msgpack"]
    assert files_to_fetch(listing) == [
        "config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
        "vocab.json", "merges.txt", "special_tokens_map.json", "model.safetensors"]
    bin_only = [f for f in listing if f != "model.safetensors"]
    assert files_to_fetch(bin_only)[-1] == "pytorch_model.bin"
    sharded = ["config.json", "processor_config.json", "tokenizer.json", "model.safetensors.index.json",
               "model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors", "pytorch_model.bin"]
    assert files_to_fetch(sharded)[-3:] == [
        "model.safetensors.index.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors"]
    with pytest.raises(UsageError, match="no model.safetensors or pytorch_model.bin"):
        files_to_fetch(["config.json", "preprocessor_config.json", "tf_model.h5"])
    with pytest.raises(UsageError, match="no preprocessor_config.json or processor_config.json"):
        files_to_fetch(["config.json", "model.safetensors"])


@pytest.mark.slow
def test_download_fills_the_cache_that_loading_reads(saved: Path, hub: Path, monkeypatch) -> None:
    import huggingface_hub

    calls = {}
    listing = sorted(p.name for p in saved.iterdir()) + ["README.md", "pytorch_model.bin"]

    def fake_list(self, repo_id, **kw):
        calls["listed"] = repo_id
        return listing

    def fake_snapshot(repo_id, **kw):
        calls.update(kw)
        snap = fake_hub_cache(Path(kw["cache_dir"]), repo_id, saved)
        return str(snap)

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", fake_list)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr("lmaczs_cli.downloads.hf.check_reachable", lambda url, timeout=5.0: None)  # "online"
    r = CliRunner().invoke(app, ["download", "clap", "hf:acme/my-clap", "--quiet"])
    assert r.exit_code == 0, r.output
    assert calls["listed"] == "acme/my-clap" and calls["cache_dir"] == str(hub)
    assert "model.safetensors" in calls["allow_patterns"]
    assert "pytorch_model.bin" not in calls["allow_patterns"]
    assert "README.md" not in calls["allow_patterns"]
    assert Path(r.output.strip().splitlines()[-1]).parent.parent.name == "models--acme--my-clap"
    assert create_model("hf:acme/my-clap").name == "hf:acme/my-clap"


def test_download_errors_are_one_line(monkeypatch) -> None:
    import huggingface_hub

    def offline(self, repo_id, **kw):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nmore detail")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", offline)
    monkeypatch.setattr("lmaczs_cli.downloads.hf.check_reachable", lambda url, timeout=5.0: None)  # reachable
    r = CliRunner().invoke(app, ["download", "clap", "hf:acme/x"])  # but the listing fails
    assert r.exit_code == 1 and "hf:acme/x: cannot list the repo files (We couldn't connect" in r.output
    r = CliRunner().invoke(app, ["download", "clap", "hf:not a repo"])
    assert r.exit_code == 2 and "not a hub repo id" in r.output
    r = CliRunner().invoke(app, ["download", "clap", "hf:acme/x", "--sha256", "00"])
    assert r.exit_code == 2 and "--url/--sha256 do not apply" in r.output


# -- registry ---------------------------------------------------------------------------


def test_registry_lists_the_names_and_the_hf_pattern() -> None:
    assert {"hf-htsat-tiny", "hf-htsat-base"} <= set(list_models())
    assert "hf:<repo-id-or-folder>" in describe_models()
    with pytest.raises(UsageError, match=r"choose one of: .*hf-htsat-tiny.*hf:<repo-id-or-folder>"):
        create_model("hf-htsat-huge")


def test_registry_import_stays_light() -> None:
    """--help must stay fast: naming models never imports transformers or torch."""
    code = ("import sys, lmaczs_cli.models.registry as r; r.describe_models(); "
            "print(sorted(m for m in ('transformers', 'torch', 'huggingface_hub') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.strip()
    assert out == "[]"


@pytest.mark.slow
def test_random_named_model_warns_and_is_seeded() -> None:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = create_model("hf-htsat-tiny", ckpt="random", seed=3)
    assert any("RANDOM weights (seed 3)" in str(x.message) for x in w)
    assert a.name == "hf-htsat-tiny" and a.source == "random"
    assert a.spec_id()["weights"] != create_model("hf-htsat-tiny", ckpt="random", seed=4).spec_id()["weights"]


def test_every_padding_mode_matches_the_extractor(saved: Path) -> None:
    """repeatpad / repeat / pad: our window gives the extractor's features for that mode, and
    the modes really differ."""
    from transformers import ClapFeatureExtractor

    from tests.helpers_laion import make_signals

    model = create_model(f"hf:{saved}")
    fe = ClapFeatureExtractor.from_pretrained(str(saved), local_files_only=True)
    x = make_signals()["3s"]
    feats = {}
    for padding in ("repeatpad", "repeat", "pad"):
        model.padding = padding
        w = model.fit_window(torch.from_numpy(x))
        assert w.valid == len(x) and torch.equal(w.wave[: len(x)], torch.from_numpy(x))
        with torch.no_grad():
            feats[padding] = model.input_transform(model.spectrogram(w.wave[None])[0])[0]
        theirs = torch.from_numpy(fe(x, padding=padding, sampling_rate=48000)["input_features"][0][0]).T
        assert float((feats[padding] - theirs).abs().median()) < 1e-4, padding
        assert float((feats[padding] - theirs).abs().quantile(0.999)) < 0.05, padding
    assert float((feats["repeat"] - feats["repeatpad"]).abs().max()) > 10
    assert float((feats["pad"] - feats["repeatpad"]).abs().max()) > 10
