"""Strong labels (onsets and offsets) in their publishers' layouts, and `evaluate` scoring the
explanations' time spans against them like sound event detection (issue #27)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from lmaczs_cli.cli.app import app
from lmaczs_cli.data.registry import DataSelection, load_dataset, select_items
from lmaczs_cli.errors import UsageError

runner = CliRunner()


def _wav(path: Path, seconds: float = 1.0, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(int(sr * seconds))).astype(np.float32), sr)
    return path


def test_urbansed_layout(tmp_path: Path) -> None:
    root = tmp_path / "URBAN-SED_v2.0.0"
    for name, lines in {"soundscape_test_bimodal0": "0.5\t2.25\tdog_bark\n3.0\t9.5\tsiren\n",
                        "soundscape_test_unimodal1": "1.000\t1.800\tgun_shot\n\n"}.items():
        _wav(root / "audio" / "test" / f"{name}.wav")
        (root / "annotations" / "test").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / "test" / f"{name}.txt").write_text(lines)
    (root / "annotations" / "test" / "soundscape_test_gone.txt").write_text("0\t1\tsiren\n")
    rep = load_dataset("urbansed", root, split="test")
    by = {Path(it.path).stem: it for it in rep.items}
    assert by["soundscape_test_bimodal0"].meta["events"] == [(0.5, 2.25, "dog bark"), (3.0, 9.5, "siren")]
    assert by["soundscape_test_bimodal0"].label == "siren"  # the longest-sounding class
    assert by["soundscape_test_unimodal1"].texts == ("gun shot",)
    assert [Path(m).name for m in rep.missing] == ["soundscape_test_gone.wav"]
    sel = select_items(DataSelection("urbansed", root, split="test"))
    assert "street music" in sel.labels and len(sel.labels) == 10  # UrbanSound8K's classes
    with pytest.raises(UsageError, match="URBAN-SED has train, validate, test"):
        load_dataset("urbansed", root, split="dev")
    (root / "annotations" / "test" / "soundscape_test_unimodal1.txt").write_text("1.0\tlater\tgun_shot\n")
    with pytest.raises(UsageError, match="line 1: onset/offset must be numbers"):
        load_dataset("urbansed", root)


def test_audiogrounding_v2_layout(tmp_path: Path) -> None:
    root = tmp_path / "audiogrounding"
    _wav(root / "audio" / "test" / "Yabc.wav")
    items = [{"audiocap_id": 1, "audio_id": "Yabc.wav", "tokens": "a dog barks while a car passes",
              "phrases": [
                  {"phrase": "a dog", "start_index": 0, "end_index": 1, "segments": [[0.2, 0.9], [2.0, 2.5]]},
                  {"phrase": "a car", "start_index": 4, "end_index": 5, "segments": [[1.0, 4.0]]}]},
             {"audiocap_id": 2, "audio_id": "Ymissing.wav", "tokens": "rain", "phrases": []}]
    (root / "test.json").write_text(json.dumps(items))
    rep = load_dataset("audiogrounding", root)
    (it,) = rep.items
    assert it.texts == ("a dog barks while a car passes",) and it.label == "a car"
    assert it.meta["events"] == [(0.2, 0.9, "a dog"), (1.0, 4.0, "a car"), (2.0, 2.5, "a dog")]
    assert [Path(m).name for m in rep.missing] == ["Ymissing.wav"]
    (root / "test.json").write_text('{"audiocap_id": {"0": 1}}')  # the v1 (pandas) format
    with pytest.raises(UsageError, match="expected a list of audio items"):
        load_dataset("audiogrounding", root)


def test_strong_label_csv(tmp_path: Path) -> None:
    _wav(tmp_path / "clips" / "a.wav")
    table = tmp_path / "labels.csv"
    table.write_text("filename,onset,offset,label\nclips/a.wav,0.1,0.4,Dog_bark\nclips/a.wav,0.5,0.6,rain\n"
                     "clips/b.wav,0,1,rain\n")
    rep = load_dataset("strong", table)
    assert [it.meta["events"] for it in rep.items] == [[(0.1, 0.4, "Dog bark"), (0.5, 0.6, "rain")]]
    assert len(rep.missing) == 1
    (tmp_path / "bad.csv").write_text("file,start,end\nx,0,1\n")
    with pytest.raises(UsageError, match="expected the columns filename,onset,offset,label"):
        load_dataset("strong", tmp_path / "bad.csv")
    (tmp_path / "back.csv").write_text("filename,onset,offset,label\nclips/a.wav,0.9,0.2,rain\n")
    with pytest.raises(UsageError, match="0 <= onset <= offset"):
        load_dataset("strong", tmp_path / "back.csv")


def test_time_spans_score_one_clip_by_hand() -> None:
    """A mask active over 1.0-2.0 s of a 5 s window against a reference event 1.05-2.1 s of the
    predicted class: one hit event-wise, segment F1 from the 100 ms grid."""
    import torch

    from lmaczs_cli.data.items import AudioItem
    from lmaczs_cli.jobs.evaluate import _time_spans
    from lmaczs_cli.models.registry import create_model

    model = create_model("small")
    hop, sr = model.stft_config.hop_length, model.sample_rate
    frames = model.n_frames
    t = np.arange(frames) * hop / sr
    mag = torch.ones(1, model.n_freqs, frames)
    mask = torch.zeros_like(mag)
    mask[..., (t >= 1.0) & (t < 2.0)] = 1.0
    item = AudioItem("c.wav", ("bell",), "bell", {"events": [(1.05, 2.1, "bell"), (3.0, 4.0, "knock")]})
    (row,) = _time_spans([item], ["bell", "knock"], torch.tensor([0]), mask, mag, "lmaczs", model)
    assert row["event_F1"] == 1.0  # onset within 200 ms, offset within max(200 ms, 20 %)
    assert 0.9 <= row["segment_F1"] < 1.0  # 10 of 11 reference segments, no false one
    (none,) = _time_spans([item], ["bell", "knock"], torch.tensor([1]), torch.zeros_like(mag), mag, "lmaczs",
                          model)
    assert none == {"event_F1": 0.0, "segment_F1": 0.0}  # knock sounds, nothing found


@pytest.mark.slow
def test_evaluate_scores_time_spans_on_a_strong_label_set(tmp_path: Path) -> None:
    from lmaczs_cli.data.synthetic import SyntheticDataset

    ds = SyntheticDataset(4, 1000003, "test")
    rows = []
    for i in range(len(ds)):
        sc = ds.scene(i)
        sf.write(tmp_path / f"s{i}.wav", sc.wave.astype(np.float32), 16000)
        rows += [f"s{i}.wav,{e.onset:.3f},{e.offset:.3f},{e.cls}" for e in sc.events]
    (tmp_path / "strong.csv").write_text("filename,onset,offset,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", "--dataset", "strong", "--data-root", str(tmp_path / "strong.csv"),
                            "--clap", "small", "--labels", "synth", "--method", "lmaczs", "--method",
                            "sliding-window", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with (out / "summary.csv").open(newline="") as f:
        metrics = {(x["method"], x["metric"]) for x in csv.DictReader(f)}
    assert {("lmaczs", "event_F1"), ("lmaczs", "segment_F1"), ("sliding-window", "event_F1")} <= metrics
