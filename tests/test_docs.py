"""The README and the documentation stay true: short README, commands that run, pages in sync with
the code, and a site that builds with ``mkdocs build --strict``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lmaczs_cli.cli.docs import render

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def _slug(heading: str) -> str:
    """The anchor MkDocs' toc extension gives a heading."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def _in_scratch(tmp_path: Path) -> Path:
    """A folder where the repository-relative example paths resolve, so outputs stay in tmp_path."""
    assets = tmp_path / "lmaczs_cli" / "assets"
    assets.parent.mkdir(parents=True)
    assets.symlink_to(REPO / "lmaczs_cli" / "assets")
    return tmp_path


def test_cli_page_is_in_sync() -> None:
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/cli.md is stale: run `make docs` (or " \
        "`python -m lmaczs_cli.cli.docs docs/cli.md`) and commit the result"


def test_readme_is_short_and_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "the README is for a five-minute read: move detail into docs/"
    links = re.findall(r"\]\(((?:docs/)[^)#\s]*)(?:#([^)\s]+))?\)", text)
    assert links, "the README should link into the documentation"
    for path, anchor in links:
        target = REPO / path
        assert target.is_file(), f"README links to missing {path}"
        if anchor:
            slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), re.M)}
            assert anchor in slugs, f"README links to {path}#{anchor}, which has no such heading"


def test_readme_set_up_commands_match_the_makefile() -> None:
    text = README.read_text(encoding="utf-8")
    make = (REPO / "Makefile").read_text(encoding="utf-8")
    quick = _blocks(text[text.index("## Quick start"):], "bash")[0]
    targets = [line.split()[1] for line in quick.splitlines() if line.startswith("make ")]
    assert targets == ["demo", "test"]
    for t in targets:
        assert re.search(rf"^{t}:", make, re.M), f"Makefile has no {t} target"
    # the command the README says `make demo` runs is the Makefile's recipe
    said = re.search(r"It runs\n`(lmaczs explain [^`]+)`", text).group(1)
    recipe = re.search(r"^demo:.*\n\t\$\(BIN\)/(lmaczs explain .*?)\n(?!\t)", make, re.M | re.S).group(1)
    recipe = " ".join(recipe.replace("\\\n", " ").replace("$(DEMO_OUT)", "lmaczs-out/demo").split())
    default_out = re.search(r"^DEMO_OUT \?= (\S+)", make, re.M).group(1)
    assert default_out == "lmaczs-out/demo" and said == recipe


def test_readme_commands_table_names_real_commands() -> None:
    from typer.testing import CliRunner

    from lmaczs_cli.cli.app import app

    r = CliRunner().invoke(app, ["--help"], env={"NO_COLOR": "1"})
    assert r.exit_code == 0
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Commands"):]
    named = set(re.findall(r"^\| `lmaczs ([a-z-]+)", table, re.M))
    assert {"explain", "baseline", "evaluate", "train", "download"} <= named
    for name in named:
        assert re.search(rf"^  {name}\b", r.output, re.M), f"README names `lmaczs {name}`, which --help lacks"


def test_readme_shell_commands_on_the_bundled_clip_run(tmp_path: Path) -> None:
    """Every `lmaczs explain` on the bundled example in the README's shell blocks, and `lmaczs --help`."""
    text = README.read_text(encoding="utf-8")
    lines = [ln.strip() for block in _blocks(text, "bash") for ln in block.splitlines()]
    cmds = [ln for ln in lines if ln.startswith("lmaczs explain lmaczs_cli/assets/examples/")]
    assert cmds, "the README should show `lmaczs explain` on the bundled example"
    cwd = _in_scratch(tmp_path)
    for cmd in [*cmds, "lmaczs --help"]:
        argv = [sys.executable, "-m", "lmaczs_cli", *shlex.split(cmd.split("  #")[0])[1:]]
        r = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd}\n{r.stderr}"
    outs = {shlex.split(c)[shlex.split(c).index("--out") + 1] for c in cmds}
    for out in outs:
        assert (cwd / out / "results.csv").is_file() and list((cwd / out).rglob("explanation.wav"))


def test_getting_started_shows_the_readme_python_example() -> None:
    """The docs' copy of the README example is the one test_api.py runs verbatim."""
    readme = README.read_text(encoding="utf-8")
    docs = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    first = _blocks(readme[readme.index("## Python API"):], "python")[0]
    assert _blocks(docs[docs.index("## Python API"):], "python")[0] == first


def test_adding_an_explainer_example_runs(tmp_path: Path) -> None:
    text = (DOCS / "explainers.md").read_text(encoding="utf-8")
    code = _blocks(text[text.index("## Adding an explainer"):], "python")[0]
    cwd = _in_scratch(tmp_path)
    (cwd / "example.py").write_text(code)
    r = subprocess.run([sys.executable, "example.py"], cwd=cwd, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("kept 10% of the bins, s = ")


def test_every_environment_variable_is_documented() -> None:
    used = set()
    for path in (REPO / "lmaczs_cli").rglob("*.py"):
        used |= set(re.findall(r"\bLMACZS_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    usage = (DOCS / "usage.md").read_text(encoding="utf-8")
    table = usage[usage.index("## Environment variables"):]
    assert used and not {v for v in used if f"`{v}`" not in table}, "document them in docs/usage.md"


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs tools are not installed: pip install -e '.[docs]'")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**ENV, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run(build, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "lmaczs_cli.api.explain" in api and "ZeroShotModel" in api  # mkdocstrings rendered the docstrings


@pytest.mark.slow
def test_the_tutorial_notebook_runs(tmp_path: Path) -> None:
    """docs/tutorial.ipynb's code cells, in order, in a fresh interpreter (no kernel needed);
    the notebook is stored without outputs."""
    import json

    nb = json.loads((REPO / "docs" / "tutorial.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    script = tmp_path / "tutorial.py"
    script.write_text("\n\n".join("".join(c["source"]) for c in code), encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "this is a sound of bell: s = " in r.stdout and "lmaczs " in r.stdout
    assert (tmp_path / "tutorial-out" / "bell" / "explanation.wav").is_file()
