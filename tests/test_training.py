"""Training loop, checkpoints and ``lmaczs train``: resume identity, refusals, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lmaczs_cli.checkpoints import decoder_payload, load_decoder, read_checkpoint, save_checkpoint
from lmaczs_cli.cli.app import app
from lmaczs_cli.cli.train import parse_duration
from lmaczs_cli.errors import UsageError
from lmaczs_cli.explainers.decoder import MaskDecoder
from lmaczs_cli.jobs.train import TrainConfig, lr_lambda, train
from tests.fake_model import FakeModel, ToyClips, collate_toy, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(
        out=str(out), clap="fake", steps=8, val_every=4, log_every=2, batch_size=4, num_workers=0,
        device="cpu", quiet=True, warmup=2, width=16,
    )
    base.update(kw)
    return TrainConfig(**base)


def _run(cfg: TrainConfig, n_train: int = 24):
    return train(
        cfg, model=FakeModel(), train_set=ToyClips(n_train), val_set=ToyClips(8, seed=9),
        collate_fn=collate_toy,
    )


def test_resume_is_identical_to_a_straight_run(tmp_path: Path) -> None:
    # 24 clips / batch 4 = 6 batches per epoch, so the split at step 5 is mid-epoch
    straight = _run(_cfg(tmp_path / "a", steps=10, save_every=5))
    first = _run(_cfg(tmp_path / "b", steps=10, max_steps=5, save_every=5))
    assert first.step == 5
    ckpt = torch.load(tmp_path / "b" / "latest.pt", weights_only=True)  # plain types + tensors only
    assert ckpt["train_state"]["step"] == 5 and ckpt["train_state"]["batch_in_epoch"] == 5
    resumed = _run(_cfg(tmp_path / "b", steps=10, save_every=5, resume=True))
    assert resumed.step == 10
    a, b = straight.decoder.state_dict(), resumed.decoder.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the log has each step once: the resumed run drops lines the first run wrote after its save
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 10


def test_outputs_and_refusal_to_overwrite(tmp_path: Path) -> None:
    res = _run(_cfg(tmp_path, steps=4, val_every=2))
    for name in ("latest.pt", "best.pt", "config.json", "log.jsonl", "val.csv"):
        assert (tmp_path / name).is_file(), name
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_spec"] == FakeModel().spec_id() and cfg["decoder_config"]["domain"] == "stft"
    vals = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    val = [v for v in vals if v["event"] == "val"][-1]
    assert {"l_sim", "mae", "corr", "fid_in", "mask_mean", "val_loss"} <= set(val)
    assert 0.0 <= res.val["fid_in"] <= 1.0
    best = read_checkpoint(tmp_path / "best.pt")
    assert "train_state" not in best and best["spec_id"] == FakeModel().spec_id()
    assert best["lmaczs_version"] and best["mask_domain"] == "stft"
    with pytest.raises(UsageError, match="already holds a run"):
        _run(_cfg(tmp_path, steps=4))


def test_select_decides_which_decoder_best_pt_holds(tmp_path: Path) -> None:
    # lr 0.2 overshoots on the toy clips: the lowest validation loss is an early step
    by_val = _run(_cfg(tmp_path / "val", steps=8, val_every=2, lr=0.2))
    vals = [json.loads(x) for x in (tmp_path / "val" / "log.jsonl").read_text().splitlines()]
    vals = [v for v in vals if v["event"] == "val"]
    assert [v["step"] for v in vals] == [2, 4, 6, 8]
    assert by_val.best_step == min(vals, key=lambda v: v["val_loss"])["step"] < 8
    assert read_checkpoint(tmp_path / "val" / "best.pt")["metrics"]["step"] == by_val.best_step
    last = _run(_cfg(tmp_path / "last", steps=8, val_every=2, lr=0.2, select="last"))
    assert last.best_step == 8
    saved = read_checkpoint(tmp_path / "last" / "best.pt")["decoder"]
    for k, v in last.decoder.state_dict().items():
        assert torch.equal(saved[k].cpu(), v.cpu()), k
    with pytest.raises(UsageError, match="--select 'first'"):
        _run(_cfg(tmp_path / "bad", select="first"))


class OtherModel(FakeModel):
    name = "other"
    n_mels = 24


def test_mismatched_decoder_is_refused(tmp_path: Path) -> None:
    model = FakeModel()
    dec = MaskDecoder.for_model(model, "stft", width=16)
    path = tmp_path / "dec.pt"
    save_checkpoint(path, decoder_payload(dec, model.spec_id()))
    loaded = load_decoder(path, model)
    for k, v in dec.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    with pytest.raises(UsageError) as e:
        load_decoder(path, OtherModel())
    msg = str(e.value)
    assert "decoder was trained for model 'fake'" in msg and "not for 'other'" in msg
    assert "32 mels" in msg and "24 mels" in msg
    with pytest.raises(UsageError, match="decoder masks the 'stft' domain, but mask domain 'mel' was asked"):
        load_decoder(path, model, domain="mel")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="not a loadable decoder checkpoint"):
        load_decoder(tmp_path / "junk.pt", model)
    with pytest.raises(UsageError, match="not found"):
        load_decoder(tmp_path / "missing.pt", model)


def test_resume_refuses_another_model_or_domain(tmp_path: Path) -> None:
    _run(_cfg(tmp_path, steps=2, val_every=0))
    with pytest.raises(UsageError, match="domain"):
        _run(_cfg(tmp_path, steps=4, resume=True, mask_domain="mel"))
    with pytest.raises(UsageError, match="differs from the one asked for"):
        _run(_cfg(tmp_path, steps=4, resume=True, width=32))


def test_schedule_and_durations() -> None:
    assert lr_lambda(0, 10, 100) == pytest.approx(0.1)
    assert lr_lambda(10, 10, 100) == pytest.approx(1.0)
    assert lr_lambda(100, 10, 100) == pytest.approx(0.1)
    assert parse_duration("90") == 90 and parse_duration("15m") == 900 and parse_duration("2h") == 7200
    with pytest.raises(UsageError):
        parse_duration("soon")


def test_cli_train_on_synthetic_scenes(tmp_path: Path) -> None:
    pytest.importorskip("lmaczs_cli.data.synthetic")
    out = tmp_path / "run"
    args = [
        "train", "--clap", "fake", "--data", "synth", "--synth-scenes", "8", "--val-size", "4",
        "--steps", "2", "--val-every", "2", "--batch-size", "4", "--num-workers", "0",
        "--device", "cpu", "--width", "16", "--out", str(out), "--quiet",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "best.pt").is_file() and (out / "latest.pt").is_file()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "already holds a run" in r.output
    r = CliRunner().invoke(app, [*args[:-3], "--out", str(tmp_path / "y"), "--mask-domain", "bark"])
    assert r.exit_code == 2 and "--mask-domain 'bark'" in r.output
    r = CliRunner().invoke(app, [*args[:-3], "--out", str(tmp_path / "z"), "--l1-on", "loudness"])
    assert r.exit_code == 2 and "--l1-on 'loudness'" in r.output and "mask, energy, power" in r.output
    assert not (tmp_path / "z").exists()
    r = CliRunner().invoke(app, ["train", "--clap", "fake", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no training data" in r.output


def test_cli_train_on_a_manifest_reports_bad_files(tmp_path: Path) -> None:
    pytest.importorskip("lmaczs_cli.data.loading")
    from lmaczs_cli.audio import write_wav
    from tests.fake_model import TOY_EVENTS, toy_wave

    rows = ["path,caption,label"]
    for i in range(10):
        cap = list(TOY_EVENTS)[i % 4]
        write_wav(tmp_path / f"c{i}.wav", toy_wave(cap, 12000, 8000, i), 8000)
        rows.append(f"c{i}.wav,{cap}," if i % 2 else f"c{i}.wav,,{cap.split()[-1]}")
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    rows.append("bad.wav,a broken file,")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, [
        "train", "--clap", "fake", "--data", "manifest", "--data-root", str(tmp_path / "m.csv"),
        "--val-fraction", "0.2", "--steps", "4", "--val-every", "2", "--batch-size", "3",
        "--num-workers", "0", "--device", "cpu", "--width", "16", "--out", str(out),
        "--prompt-template", "the sound of {label}",
    ])
    assert r.exit_code == 1, r.output  # finished, but one input could not be read
    assert "bad.wav" in r.output and "1 clips could not be read" in r.output
    assert "for training" in r.output
    assert (out / "best.pt").is_file()


def test_validation_split_is_stable_and_never_tiny(tmp_path: Path) -> None:
    from lmaczs_cli.data.items import AudioItem
    from lmaczs_cli.jobs.train.data import split_validation

    def items(root: Path) -> list:
        return [AudioItem(str(root / "audio" / f"{i}.wav"), (f"cap {i}",)) for i in range(40)]

    tr_a, va_a = split_validation(items(tmp_path / "a"), tmp_path / "a", 0.05, 256)
    tr_b, va_b = split_validation(items(tmp_path / "elsewhere"), tmp_path / "elsewhere", 0.05, 256)
    assert [Path(i.path).name for i in va_a] == [Path(i.path).name for i in va_b]  # moved set, same split
    assert len(va_a) == 2 and len(tr_a) == 38
    assert not {i.path for i in va_a} & {i.path for i in tr_a}
    assert len(split_validation(items(tmp_path), tmp_path, 0.5, 5)[1]) == 5
    assert split_validation(items(tmp_path), tmp_path, 0.0, 5)[1] == []


def test_validation_cache_gives_the_same_numbers_without_reading_the_clips_again() -> None:
    from lmaczs_cli.explainers.decoder import MaskDecoder
    from lmaczs_cli.jobs.train.distributed import DistInfo
    from lmaczs_cli.jobs.train.validation import ValidationCache, validate
    from lmaczs_cli.objective import LossWeights

    model = FakeModel()
    decoder = MaskDecoder.for_model(model, width=16)
    cfg = _cfg(Path("unused"))
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    val = ToyClips(8, seed=9)
    plain = validate(model, decoder, val, cfg, info, LossWeights(), collate_toy)
    cache = ValidationCache()
    first = validate(model, decoder, val, cfg, info, LossWeights(), collate_toy, cache=cache)
    reads = len(val.accessed)
    second = validate(model, decoder, val, cfg, info, LossWeights(), collate_toy, cache=cache)
    assert len(val.accessed) == reads  # the second validation decoded nothing
    assert plain == first == second and len(cache.parts) == 2
    tiny = ValidationCache(budget_bytes=1)  # nothing fits: still right, just not cached
    assert validate(model, decoder, val, cfg, info, LossWeights(), collate_toy, cache=tiny) == plain
    assert tiny.parts == {}


def test_preset_fills_what_the_command_line_left_at_its_default(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--clap", "fake", "--device", "cpu", "--data", "synth",
                                 "--synth-scenes", "8", "--preset", "small", "--steps", "2",
                                 "--val-size", "4", "--width", "16", "--num-workers", "0", "--out", str(out),
                                 "--decoder-skip", "1", "--quiet"])  # the fake model has 2 hidden maps
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "small"
    assert (cfg["steps"], cfg["val_size"], cfg["num_workers"]) == (2, 4, 0)  # given on the command line
    assert (cfg["batch_size"], cfg["val_every"]) == (6, 60)  # from the preset
    w = cfg["weights"]
    assert (w["sim_loss"], w["out_ref"], cfg["select"]) == ("one_sided", "clip", "last")
    assert (cfg["weights"]["l1_on"], cfg["weights"]["l1_mask"], cfg["sim_input"]) == ("power", 0.5, False)
    assert cfg["decoder_skip"] == 1  # the command line wins over the preset's 0
    assert len(cfg["extra_prompts"]) == 10  # the preset's --labels synth
    r = CliRunner().invoke(app, ["train", "--clap", "fake", "--data", "synth", "--preset", "nope",
                                 "--out", str(out)])
    assert r.exit_code == 2 and "--preset 'nope': expected one of small, laion" in r.output
