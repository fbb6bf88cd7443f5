"""The shape of the package: nothing outside cli/ imports cli/, only cli/ and dev/ parse a command
line, options are declared once and shared, every model-running command has the shared options,
functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.app import app

PKG = Path(__file__).resolve().parents[1] / "lmaczs_cli"
MODEL_COMMANDS = ("explain", "baseline", "evaluate", "sanity-check", "train", "classify", "fad")


def _modules(where: Path = PKG) -> list[Path]:
    return sorted(p for p in where.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):  # function-level imports included
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_nothing_outside_cli_imports_cli() -> None:
    offenders = []
    for path in _modules():
        rel = path.relative_to(PKG)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        bad = sorted(n for n in _imported(ast.parse(path.read_text())) if n.startswith("lmaczs_cli.cli"))
        offenders += [f"{rel}: {n}" for n in bad]
    assert offenders == []


def test_the_import_rule_test_catches_an_offender() -> None:  # the check above can fail
    tree = ast.parse("def f():\n    from lmaczs_cli.cli.common import err\n")
    assert "lmaczs_cli.cli.common" in _imported(tree)


#: modules outside cli/ and dev/ that read sys.argv, and why (none of them may parse it)
ARGV_READERS = {
    "provenance.py": "copies sys.argv into run.json as a record of the run",
    "jobs/train/trainer.py": "copies sys.argv into a training run's config.json as a record",
}


def _command_line_use(tree: ast.AST) -> set[str]:
    """``argparse`` (or ``optparse``/``getopt``) when imported, ``sys.argv`` when read."""
    used = {n for n in _imported(tree) if n.split(".")[0] in ("argparse", "optparse", "getopt")}
    used |= {"sys.argv"} if "sys.argv" in _imported(tree) else set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == "argv"
                and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            used.add("sys.argv")
    return used


def test_only_cli_and_dev_parse_a_command_line() -> None:
    """Research commands live in dev/ (``python -m lmaczs_cli.dev.…``), the user CLI in cli/; library
    modules take arguments, not argv (the older ``python -m`` paths only import dev's ``main``)."""
    offenders = []
    for path in _modules():
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("cli", "dev"):
            continue
        used = _command_line_use(ast.parse(path.read_text()))
        if rel.as_posix() in ARGV_READERS:
            used.discard("sys.argv")
        offenders += [f"{rel.as_posix()}: {n}" for n in sorted(used)]
    assert offenders == []


def test_the_command_line_rule_catches_an_offender() -> None:
    assert _command_line_use(ast.parse("def f():\n    import argparse\n")) == {"argparse"}
    assert _command_line_use(ast.parse("import sys\nx = sys.argv[1:]\n")) == {"sys.argv"}
    assert _command_line_use(ast.parse("from sys import argv\n")) == {"sys.argv"}
    assert _command_line_use(ast.parse("import sys\nsys.exit(0)\n")) == set()


def _option_calls(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "typer"
                and node.func.attr in ("Option", "Argument")):
            lines.append(node.lineno)
    return lines


def test_options_are_declared_only_in_options_py() -> None:
    elsewhere = {str(p.relative_to(PKG)): _option_calls(p) for p in _modules()
                 if p.name != "options.py" and _option_calls(p)}
    assert elsewhere == {}


def _command(name: str) -> click.Command:
    group = typer.main.get_command(app)
    return group.commands[name]  # type: ignore[attr-defined]


def _params(cmd: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in cmd.params}


@pytest.mark.parametrize("name", MODEL_COMMANDS)
def test_every_model_command_has_the_shared_options(name: str) -> None:
    params = _params(_command(name))
    for key, (annotation, _default) in {**o.RUN_OPTIONS, **o.MANNERS}.items():
        declared = annotation.__metadata__[0]  # the typer.Option inside the Annotated type
        flags = {d for d in (declared.default, *declared.param_decls) if isinstance(d, str)}
        assert key in params, f"{name} lacks {sorted(flags)}"
        assert set(params[key].opts) == flags
        assert params[key].help == declared.help
        assert params[key].envvar == declared.envvar
    assert "out" in params


def test_one_default_model_everywhere() -> None:
    from lmaczs_cli.api import load_model
    from lmaczs_cli.jobs.train import TrainConfig
    from lmaczs_cli.runtime import DEFAULT_MODEL, RunOptions

    assert RunOptions().clap == TrainConfig(out="x").clap == DEFAULT_MODEL
    import inspect

    assert inspect.signature(load_model).parameters["name"].default == DEFAULT_MODEL
    for name in MODEL_COMMANDS:
        assert _params(_command(name))["clap"].default == DEFAULT_MODEL


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.relative_to(PKG)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


#: the modules that use the network (everything else, models included, reads caches only)
NETWORK = ("lmaczs_cli.downloads.fetch", "lmaczs_cli.downloads.hf", "lmaczs_cli.downloads.datasets",
           "urllib.request", "http.client", "socket", "huggingface_hub")


def test_models_never_import_network_code() -> None:
    offenders = []
    for path in _modules(PKG / "models"):
        bad = sorted(n for n in _imported(ast.parse(path.read_text())) if n.startswith(NETWORK))
        offenders += [f"{path.relative_to(PKG)}: {n}" for n in bad]
    assert offenders == []


def test_cache_paths_are_no_network_code() -> None:  # models read them (downloads/cache.py)
    tree = ast.parse((PKG / "downloads" / "cache.py").read_text())
    assert sorted(n for n in _imported(tree) if n.startswith(NETWORK)) == []


def test_each_family_lives_in_its_folder() -> None:
    """models/ holds shared code and one package per family; a family's record is in its folder."""
    from lmaczs_cli.models.families import list_families

    folders = {p.name for p in (PKG / "models").iterdir() if p.is_dir() and p.name != "__pycache__"}
    for family in list_families():
        folder = family.name.replace("-", "_").replace("ms_clap", "msclap")
        assert folder in folders and (PKG / "models" / folder / "family.py").is_file(), family.name
    assert not [p.name for p in (PKG / "models").glob("*.py")
                if p.name.startswith(("laion", "msclap", "hf_", "pe_audio"))]


@pytest.mark.parametrize("old, new", [
    ("lmaczs_cli.jobs.groundtruth", "lmaczs_cli.dev.groundtruth"),
    ("lmaczs_cli.models.small_training", "lmaczs_cli.dev.small_training"),
    ("lmaczs_cli.models.small_domain", "lmaczs_cli.dev.small_domain"),
])
def test_the_older_research_paths_run_the_dev_commands(
    old: str, new: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``python -m <old> …`` (quoted by the bundled model's card and older issues) runs dev's main."""
    import runpy
    import warnings

    monkeypatch.setattr("sys.argv", [old, "--help"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module was imported before
        with pytest.raises(SystemExit) as done:
            runpy.run_module(old, run_name="__main__", alter_sys=True)
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {new} ")
