"""Every missing piece of a real CLAP run is named at once, before anything heavy; random weights
need nothing at all (issue: from a real checkpoint to the first explanation)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "lmaczs_cli" / "assets" / "examples" / "scene.wav"


def _bare_env(home: Path) -> dict[str, str]:
    """No lmaczs or Hugging Face cache, no checkpoint or tokenizer variables, no network use."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMACZS_", "HF_", "XDG_"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return env


def _lmaczs(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(
        [sys.executable, "-m", "lmaczs_cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_a_bare_machine_hears_everything_that_is_missing_at_once(tmp_path: Path) -> None:
    env = _bare_env(tmp_path / "home")
    r, cpu = _lmaczs(
        ["explain", str(SCENE), "--prompt", "dog barking", "--out", str(tmp_path / "o")], env, tmp_path
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    msg = lines[0]
    assert msg.startswith("lmaczs: error: cannot explain with --clap laion-htsat-tiny yet: missing (1)")
    assert "`lmaczs download clap 630k-audioset-best.pt`" in msg  # (1) the checkpoint
    assert "`lmaczs download tokenizer`" in msg  # (2) the tokenizer
    assert "decoder" not in msg  # none is needed: without one, explain runs per clip
    assert 'README "Explaining a real CLAP"' in msg and "--clap small" in msg
    r, cpu = _lmaczs(["explain", str(SCENE), "--prompt", "dog barking", "--require-decoder", "--out",
                      str(tmp_path / "o")], env, tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "(3) an LMAC-ZS decoder trained for laion-htsat-tiny" in r.stderr and "--preset laion" in r.stderr
    assert cpu < 2.0  # answered without building anything (no torch import)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--clap", "ms-clap-2022"], "`lmaczs download clap ms-clap-2022`"),
        (["--clap", "hf:laion/clap-htsat-unfused"], "`lmaczs download clap hf:laion/clap-htsat-unfused`"),
        (["--clap", "laion-htsat-tiny-fusion"], "`lmaczs download clap 630k-audioset-fusion-best.pt`"),
        (
            ["--clap", "laion-htsat-tiny", "--clap-ckpt", "random", "--require-decoder"],
            "an LMAC-ZS decoder trained for laion-htsat-tiny",
        ),
        (["--clap", "small", "--decoder", "nope.pt"], "the decoder file nope.pt (--decoder): no such file"),
    ],
)
def test_each_family_names_what_it_lacks(tmp_path: Path, args: list[str], expect: str) -> None:
    r, _ = _lmaczs(
        ["explain", str(SCENE), "--prompt", "x", *args, "--out", str(tmp_path / "o")],
        _bare_env(tmp_path / "home"),
        tmp_path,
    )
    assert r.returncode == 2 and expect in r.stderr, r.stderr
    assert "(1)" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_baselines_need_no_decoder_and_random_weights_need_no_tokenizer(tmp_path: Path) -> None:
    env = _bare_env(tmp_path / "home")
    r, _ = _lmaczs(
        [
            "classify",
            str(SCENE),
            "--clap",
            "laion-htsat-tiny",
            "--clap-ckpt",
            "random",
            "--labels",
            "esc50",
            "--top-k",
            "2",
            "--out",
            str(tmp_path / "c"),
        ],
        env,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "RANDOM WEIGHTS" in r.stderr and "stand-in text tokenizer" in r.stderr
    assert (tmp_path / "c" / "classify.csv").is_file()
    assert not (tmp_path / "home" / ".cache" / "lmaczs" / "tokenizers").exists()  # nothing was fetched
