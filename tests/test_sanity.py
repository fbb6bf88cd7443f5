"""Sanity checks: randomisation steps, weight restoration, SSIM at step 0, prompt sensitivity."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch
from typer.testing import CliRunner

import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli import metrics as M
from lmaczs_cli.cli.app import app
from lmaczs_cli.jobs.sanity import (
    chance_levels,
    chance_partners,
    randomisation_steps,
    randomised,
    reinitialise,
)
from tests.fake_model import FakeModel
from tests.fixtures_data import make_esc50

runner = CliRunner()


def test_cascading_steps_go_top_down_and_accumulate() -> None:
    steps = randomisation_steps(["a", "b", "c"], "cascading")
    assert [s.blocks for s in steps] == [(), ("c",), ("c", "b"), ("c", "b", "a")]
    ind = randomisation_steps(["a", "b", "c"], "independent")
    assert [s.blocks for s in ind] == [(), ("c",), ("b",), ("a",)]


def test_block_list_is_the_models_real_structure() -> None:
    m = FakeModel()
    names = [n for n, _ in m.randomisable_blocks()]
    mods = dict(m.named_modules())
    assert all(mods[n] is b for n, b in m.randomisable_blocks())
    assert names == ["block1", "block2", "head"]


def test_randomised_context_changes_only_chosen_blocks_and_restores() -> None:
    m = FakeModel()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with randomised(m, [("block2", m.block2)], seed=3):
        after = m.state_dict()
        assert not torch.equal(after["block2.0.weight"], before["block2.0.weight"])
        assert torch.equal(after["block1.0.weight"], before["block1.0.weight"])
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())


def test_reinitialise_is_seeded() -> None:
    a, b = FakeModel(), FakeModel()
    reinitialise(a.block1, 7)
    reinitialise(b.block1, 7)
    assert torch.equal(a.block1[0].weight, b.block1[0].weight)


def test_sanity_check_command(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    out = tmp_path / "sanity"
    r = runner.invoke(app, ["sanity-check", "--dataset", "esc50", "--data-root", str(root), "--method",
                            "gradcam", "--method", "smoothgrad", "--smoothgrad-samples", "3", "--max-samples",
                            "4", "--clap", "fake", "--device", "cpu", "--out", str(out), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    with (out / "ssim.csv").open() as f:
        both = list(csv.DictReader(f))
    rows = [x for x in both if x["metric"] == "ssim"]
    levels = [x for x in both if x["metric"] == "mask_mean_ratio"]  # randomised / intact mask mean
    assert {x["method"] for x in rows} == {"gradcam", "smoothgrad"}
    step0 = [x for x in rows + levels if x["step"] == "0"]
    assert all(abs(float(x["mean"]) - 1.0) < 1e-6 for x in step0)  # nothing randomised: identical maps
    assert len(rows) == len(levels) == 2 * 4  # methods x (intact + 3 blocks)
    assert all(float(x["mean"]) > 0 for x in levels)
    deep = [float(x["mean"]) for x in rows if x["step"] == "3"]
    assert all(v < 0.999 for v in deep)  # randomising everything changes the maps
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["method"] for x in lines} == {"gradcam", "smoothgrad"}
    assert all(len(x["mask_mean_ratio_curve"]) == 4 and abs(x["mask_mean_ratio_curve"][0] - 1) < 1e-6
               for x in lines)
    assert (out / "ssim.png").stat().st_size > 1000 and (out / "mask_vs_similarity.png").exists()
    with (out / "prompt_sensitivity.csv").open() as f:
        sens = list(csv.DictReader(f))
    assert len(sens) == 2 * 4 * (1 + 3)
    ranks = [x for x in both if x["metric"] == "rank_corr"]
    assert len(ranks) == 2 * 4 and all(abs(float(x["mean"]) - 1) < 1e-9 for x in ranks if x["step"] == "0")
    chance = [x for x in both if x["metric"] in ("ssim_chance", "ssim_empty_map", "rank_corr_chance")]
    assert {x["step"] for x in chance} == {"0"}  # once per method, from the intact maps
    kinds = {(x["method"], x["metric"]) for x in chance}
    # the fake model's GradCAM maps are mostly flat (no ranking, so no rank chance level)
    assert {(m, k) for m in ("gradcam", "smoothgrad") for k in ("ssim_chance", "ssim_empty_map")} <= kinds
    assert ("smoothgrad", "rank_corr_chance") in kinds and len(chance) == len(kinds)
    for x in lines:  # the verdict on shape follows the margin's CI over chance
        lo, hi = x["rank_corr_above_chance_ci"]
        assert len(x["rank_corr_curve"]) == 4
        # no verdict without a margin (too few ranked clips: NaN bounds), else it is the CI's sign
        assert x["shape_kept"] is None if lo != lo else (lo <= hi and x["shape_kept"] == (lo > 0))
    with (out / "ssim_samples.csv").open() as f:
        samples = [x for x in csv.DictReader(f) if x["method"] == "smoothgrad"]  # ranked maps
    last = [x for x in samples if x["step"] == "3"]
    intact = {x["clip"]: float(x["rank_corr_chance"]) for x in samples if x["step"] == "0"}
    # NaN (a flat map has no ranking) propagates to the margin; the others are checked
    ranked = [x for x in last if math.isfinite(float(x["rank_corr"]) - intact[x["clip"]])]
    assert ranked and len(ranked) + sum(x["rank_corr_above_chance"] in ("", "nan") for x in last) == len(last)
    for x in ranked:  # the margin is the clip's own rank correlation minus its chance level (CSV: 6 digits)
        margin = float(x["rank_corr"]) - intact[x["clip"]]
        assert abs(float(x["rank_corr_above_chance"]) - margin) < 1e-5


def test_sanity_check_prints_the_chance_levels(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    r = runner.invoke(app, ["sanity-check", "--dataset", "esc50", "--data-root", str(root), "--method",
                            "smoothgrad", "--smoothgrad-samples", "3", "--max-samples", "4", "--clap", "fake",
                            "--device", "cpu", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())["methods"][0]
    assert summary["shape_kept"] is not None
    line = [x for x in r.output.splitlines() if x.strip().startswith("chance levels:")]
    assert len(line) == 1
    assert f"{summary['ssim_chance']:.2f} to another clip's map" in line[0]
    assert f"{summary['ssim_empty_map']:.2f} to an empty map" in line[0]
    said = "keep the intact maps' shape beyond chance" if summary["shape_kept"] else "no more of the"
    assert said in line[0]


def test_chance_partners_are_other_clips_of_another_class_and_seeded() -> None:
    classes = torch.tensor([0, 0, 0, 1, 1, 2])
    p = chance_partners(6, classes, seed=4)
    assert all(int(p[j]) != j and int(classes[p[j]]) != int(classes[j]) for j in range(6))
    assert torch.equal(p, chance_partners(6, classes, seed=4))          # reproducible
    same = chance_partners(3, torch.tensor([5, 5, 5]), seed=0)          # no other class: any other clip
    assert all(int(same[j]) != j for j in range(3))
    assert all(int(q) != j for j, q in enumerate(chance_partners(4)))   # no classes given


def test_chance_levels_compare_each_clip_with_its_partner_and_an_empty_map() -> None:
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(1)
    maps = torch.rand(4, 12, 16, generator=g)
    classes = torch.tensor([0, 1, 0, 1])
    partner = chance_partners(4, classes, seed=7)
    maps[int(partner[0])] = maps[0] * 2.0  # clip 0's partner has its shape: SSIM and rank correlation 1
    levels = chance_levels(maps, classes, seed=7)
    torch.testing.assert_close(levels["ssim_chance"], M.ssim(maps, maps[partner]))
    torch.testing.assert_close(levels["ssim_empty_map"], M.ssim(maps, torch.zeros_like(maps)))
    assert abs(float(levels["ssim_chance"][0]) - 1) < 1e-9
    assert abs(float(levels["rank_corr_chance"][0]) - 1) < 1e-9
    expected = spearmanr(maps[2].flatten(), maps[int(partner[2])].flatten())[0]
    assert abs(float(levels["rank_corr_chance"][2]) - expected) < 1e-9
    # a sparse map scores high SSIM against an empty one: why the SSIM needs its chance level beside it
    sparse = torch.zeros(2, 12, 16)
    sparse[:, 2:4, 3:6] = 1.0
    assert (chance_levels(sparse)["ssim_empty_map"] > 0.5).all()
    one = chance_levels(maps[:1])
    assert torch.isnan(one["ssim_chance"]).all() and torch.isnan(one["rank_corr_chance"]).all()


def test_shape_verdict_needs_enough_ranked_clips() -> None:
    from lmaczs_cli.jobs.sanity import _summary

    def rows(n: int) -> list[dict]:
        return [{"method": "m", "step": k, "block": str(k), "metric": "ssim", "mean": 1.0 - 0.2 * k,
                 "ci_low": 0, "ci_high": 1, "n": 5} for k in range(2)] + [
            {"method": "m", "step": 1, "block": "1", "metric": "rank_corr_above_chance", "mean": 0.4,
             "ci_low": 0.3, "ci_high": 0.5, "n": n}]

    assert _summary(rows(5), [], ["m"])["methods"][0]["shape_kept"] is True
    assert _summary(rows(2), [], ["m"])["methods"][0]["shape_kept"] is None  # two clips: no verdict


def test_sanity_check_passes_the_mask_domain_to_lmaczs(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    args = ["sanity-check", "--dataset", "esc50", "--data-root", str(root), "--method", "lmaczs",
            "--max-samples", "2", "--clap", "fake", "--device", "cpu", "--out", str(tmp_path / "s")]
    r = runner.invoke(app, [*args, "--mask-domain", "mel"])
    assert r.exit_code == 2 and "no mel-domain decoder is bundled for --clap fake" in r.output
    r = runner.invoke(app, [*args, "--mask-domain", "fft"])
    assert r.exit_code == 2 and "--mask-domain 'fft': expected one of stft, mel" in r.output
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_sanity_check_verdict_of_empty_maps_names_no_ratio(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    r = runner.invoke(app, ["sanity-check", "--dataset", "esc50", "--data-root", str(root),
                            "--method", "empty", "--max-samples", "2", "--clap", "fake", "--device", "cpu",
                            "--out", str(tmp_path / "sanity")])
    assert r.exit_code == 0, r.output
    verdict = [line for line in r.output.splitlines() if line.startswith("empty: ")]
    assert len(verdict) == 1 and "the intact maps are empty" in verdict[0] and "nan" not in verdict[0]


def test_empty_keeps_similarity_compares_the_empty_clip_with_the_clip() -> None:
    """1 where the model matches an all-zero |X| to the prompt at least as well as the clip itself."""
    from lmaczs_cli.jobs.sanity import empty_keeps_similarity

    torch.manual_seed(0)
    model = FakeModel().eval()
    mag = torch.rand(5, model.n_freqs, model.n_frames) * torch.linspace(0.1, 2, 5)[:, None, None]
    text = torch.nn.functional.normalize(torch.randn(5, model.embed_text(["x"]).shape[-1]), dim=-1)
    with torch.no_grad():
        s = (model.encode(mag).embedding.float() * text).sum(-1)
        s0 = (model.encode(torch.zeros_like(mag[:1])).embedding.float() * text).sum(-1)
    want = (s0 >= s).double()
    assert 0 < float(want.sum()) < 5  # both outcomes occur, so the test can fail either way
    assert torch.equal(empty_keeps_similarity(model, mag, text, 2), want)  # batching does not matter
    assert torch.equal(empty_keeps_similarity(model, mag, text, 2, s), want)  # known similarities
    # prompts equal to the empty clip's own embedding: the empty clip matches them best (s0 = 1)
    e0 = torch.nn.functional.normalize(model.encode(torch.zeros_like(mag[:1])).embedding.float(), dim=-1)
    assert float(empty_keeps_similarity(model, mag, e0.expand(5, -1), 5).min()) == 1.0


def test_sanity_check_prints_how_often_the_model_hears_no_evidence(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    r = runner.invoke(app, ["sanity-check", "--dataset", "esc50", "--data-root", str(root), "--method",
                            "all-ones", "--max-samples", "4", "--clap", "fake", "--device", "cpu",
                            "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())["methods"][0]
    curve = summary["empty_keeps_s_curve"]
    assert len(curve) == 4 and all(0.0 <= v <= 1.0 for v in curve)
    with (tmp_path / "s" / "ssim_samples.csv").open() as f:
        rows = list(csv.DictReader(f))
    for step in range(4):  # the curve is the mean of the per-clip flags
        flags = [float(x["empty_keeps_s"]) for x in rows if x["step"] == str(step)]
        assert len(flags) == 4 and set(flags) <= {0.0, 1.0}
        assert abs(sum(flags) / 4 - curve[step]) < 1e-9
    line = [x for x in r.output.splitlines() if x.startswith("evidence:")]
    assert len(line) == 1 and f"{100 * curve[0]:.0f} % of clips with the intact model" in line[0]
    assert f"{100 * curve[-1]:.0f} % after the last block" in line[0]
    split = summary["last_step_by_evidence"]  # the last step's clips, by the same per-clip flag
    assert split["hears_nothing"]["n"] == round(4 * curve[-1])
    assert split["heard"]["n"] + split["hears_nothing"]["n"] == 4
    lead = "  after the last block, where the randomised model"
    assert sum(x.startswith(lead) for x in r.output.splitlines()) == 1


def test_evidence_split_groups_the_last_step_by_what_the_randomised_model_hears() -> None:
    from lmaczs_cli.jobs.sanity import evidence_split
    from lmaczs_cli.report.studies import evidence_split_line

    def row(step, keeps, ratio, rank, margin):  # as read back from ssim_samples.csv: strings
        return {"method": "m", "step": str(step), "empty_keeps_s": str(keeps), "mask_mean_ratio": str(ratio),
                "rank_corr": str(rank), "rank_corr_above_chance": str(margin)}

    rows = [row(0, 0, 1, 1, 0.9)] * 5 + [row(1, 0, 9, 0.9, 0.9)] * 3 + [  # intact and an earlier step
        row(2, 0, 0.5, 0.2, 0.1), row(2, 0, 0.7, 0.4, 0.3), row(2, 0, 0.9, "nan", "nan"),
        row(2, 1, 0.01, 0.6, 0.5), row(2, 1, 0.03, 0.8, 0.5),
        {**row(2, 0, 5, 5, 5), "method": "other"}]
    split = evidence_split(rows, "m")
    heard, nothing = split["heard"], split["hears_nothing"]
    assert heard["n"] == 3 and heard["mask_mean_ratio"] == 0.7  # the median of 0.5, 0.7, 0.9
    assert abs(heard["rank_corr"] - 0.3) < 1e-12  # NaN (a constant map) left out
    assert math.isnan(heard["rank_corr_above_chance"])  # two ranked clips: too few for a CI
    assert nothing["n"] == 2 and abs(nothing["mask_mean_ratio"] - 0.02) < 1e-12
    assert abs(nothing["rank_corr"] - 0.7) < 1e-12
    line = evidence_split_line({"last_step_by_evidence": split})
    heard_part = "still hears the prompt (3 clips): mask mean 0.70 x intact (median), rank correlation 0.30;"
    assert heard_part in line
    assert "hears nothing (2 clips): mask mean 0.02 x intact (median), rank correlation 0.70" in line
    assert "margin" not in line  # no CI with fewer than three ranked clips
    three = rows + [row(2, 0, 0.8, 0.6, 0.5)]
    ci = evidence_split(three, "m")["heard"]["rank_corr_above_chance_ci"]
    assert ci[0] <= 0.3 <= ci[1] and ci[0] >= 0.1 and ci[1] <= 0.5  # mean of 0.1, 0.3, 0.5
    assert evidence_split([{**r, "empty_keeps_s": ""} for r in rows], "m") is None  # an older run's rows
    assert evidence_split_line({}) is None


def test_randomised_small_weights_are_sanity_checks_last_step(tmp_path: Path) -> None:
    """dev.randomised_small writes exactly the weights sanity-check explains at its last step."""
    from lmaczs_cli.dev.randomised_small import main
    from lmaczs_cli.jobs.sanity import _blocks
    from lmaczs_cli.models.registry import load_model

    out = tmp_path / "r.safetensors"
    assert main(["--out", str(out)]) == 0
    intact = load_model("small", None, None, "cpu", 0)
    saved = load_model("small", str(out), None, "cpu", 0).state_dict()
    by_name = dict(_blocks(intact, "stage"))
    last = randomisation_steps(list(by_name))[-1]  # every block, top down, with the last step's seed
    with randomised(intact, [(n, by_name[n]) for n in last.blocks], 1000 * last.index):
        want = intact.state_dict()
        assert want.keys() == saved.keys()
        assert all(torch.equal(want[k], saved[k]) for k in want)
    changed = [k for k in want if not torch.equal(intact.state_dict()[k], saved[k])]
    assert changed and all(k.startswith("blocks.") for k in changed)  # only the encoder's blocks
