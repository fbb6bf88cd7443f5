"""``lmaczs classify``: zero-shot top-k labels for clips."""

from __future__ import annotations

from pathlib import Path

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command, print_table
from lmaczs_cli.data.prompts import DEFAULT_TEMPLATE

HELP = """Zero-shot classification: rank prompts (or labels) for each clip.

The table goes to stdout (--json: one JSON object per row instead); classify.csv is written to --out.

Examples:

  lmaczs classify dog.wav --prompt "dog barking" --prompt "rain"

  lmaczs classify audio/ --labels esc50 --top-k 3 --out runs/cls --json
"""


def register(app: typer.Typer) -> None:
    command(app, "classify", help=HELP, short_help="Zero-shot top-k labels for clips.")(classify)


def classify(
    inputs: o.Inputs = None,
    prompt: o.Prompt = None,
    prompts_file: o.PromptsFile = None,
    labels: o.Labels = None,
    prompt_template: o.PromptTemplate = DEFAULT_TEMPLATE,
    top_k: o.ClassifyTopK = 5,
    files_from: o.FilesFrom = None,
    out: o.Out = Path("lmaczs-out"),
    shard: o.Shard = None,
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.jobs.classify import ClassifyConfig, run_classify

    res = run_classify(ClassifyConfig(
        inputs=inputs or [], out=out, prompt=prompt, prompts_file=prompts_file, labels=labels,
        prompt_template=prompt_template, top_k=top_k, files_from=files_from, shard=shard,
        run=shared.run,
    ), shared.reporter())
    if not shared.json_out:
        print_table(None, ["clip", "rank", "label", "similarity", "probability"], [
            [Path(r["clip"]).name, str(r["rank"]), r["label"], f"{r['similarity']:.3f}",
             f"{r['probability']:.3f}"] for r in res.rows if r["status"] == "ok"])
    if res.failed:
        raise typer.Exit(1)
