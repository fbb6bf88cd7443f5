"""CLI manners: fast --help, --version, completions in sync with the command tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from lmaczs_cli import __version__
from lmaczs_cli.cli.app import app
from lmaczs_cli.cli.completions import render_all

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"lmaczs {__version__}"


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from lmaczs_cli.cli.app import app; "
        "heavy = [m for m in ('torch', 'laion_clap', 'matplotlib', 'transformers') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_answers_quickly() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    best = min(
        _timed([sys.executable, "-m", "lmaczs_cli", "--help"], env) for _ in range(3)
    )
    assert best < 1.0  # the 0.3 s goal is measured in benchmarks/; this only catches regressions


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, env=env)
    return time.perf_counter() - t


def test_every_command_has_help_with_example() -> None:
    import click
    import typer

    root = typer.main.get_command(app)
    ctx = click.Context(root)
    for name in root.list_commands(ctx):
        r = runner.invoke(app, [name, "--help"], env={"NO_COLOR": "1", "COLUMNS": "200"})
        assert r.exit_code == 0, name
        assert "lmaczs " + name in r.output, f"{name} --help has no example"


def test_completions_are_in_sync() -> None:
    for name, text in render_all().items():
        committed = (REPO / "completions" / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"completions/{name} is stale: run `make completions` and commit the result"
        )


def test_bash_completion_script_parses() -> None:
    path = REPO / "completions" / "lmaczs.bash"
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _bash_complete(words: list[str]) -> list[str]:
    script = REPO / "completions" / "lmaczs.bash"
    words_str = " ".join(f"'{w}'" for w in words)
    cmd = (f"source '{script}'; COMP_WORDS=({words_str}); COMP_CWORD={len(words) - 1}; "
           "_lmaczs; printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True)
    return r.stdout.split()


def test_bash_completion_completes_commands_and_options() -> None:
    assert _bash_complete(["lmaczs", "ex"]) == ["explain"]
    opts = _bash_complete(["lmaczs", "explain", "--res"])
    assert set(opts) == {"--residual", "--resume"}


def test_zsh_and_fish_scripts_parse() -> None:
    import shutil

    import pytest

    checked = 0
    for shell, name in (("zsh", "_lmaczs"), ("fish", "lmaczs.fish")):
        if shutil.which(shell):
            path = str(REPO / "completions" / name)
            r = subprocess.run([shell, "-n", path], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            checked += 1
    if not checked:
        pytest.skip("neither zsh nor fish is installed")


def test_fish_completion_completes_commands_and_options() -> None:
    import shutil

    import pytest

    if not shutil.which("fish"):
        pytest.skip("fish is not installed (CI installs it)")
    script = REPO / "completions" / "lmaczs.fish"
    cmd = f"source '{script}'; complete -C 'lmaczs ex'; complete -C 'lmaczs explain --res'"
    r = subprocess.run(["fish", "-c", cmd], capture_output=True, text=True, check=True)
    got = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert got == ["explain", "--residual", "--resume"]
