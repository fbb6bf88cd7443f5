"""The page: a :class:`~lmaczs_cli.report.Report` as one HTML document.

Every text from the folder is escaped (prompts and file names are user input); the
explanations travel as JSON inside a non-executed ``<script type="application/json">``
with ``<``, ``>`` and ``&`` escaped, and are drawn by ``assets/report/page.js`` with
``textContent`` only. A Content-Security-Policy allows only the page's own inline script
and style (by hash) and local images and audio: no request can leave the machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from importlib import resources
from typing import TYPE_CHECKING

from lmaczs_cli.report.links import href
from lmaczs_cli.report.provenance import summary_fields
from lmaczs_cli.report.studies import (
    METRIC_NOTES,
    Cell,
    chance_line,
    evidence_line,
    evidence_split_line,
    number,
    verdict,
)

if TYPE_CHECKING:
    from lmaczs_cli.report import Report


def _asset(name: str) -> str:
    return resources.files("lmaczs_cli").joinpath("assets", "report", name).read_text(encoding="utf-8")


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def e(value: object) -> str:
    """Text escaped for HTML content and attribute values."""
    return escape(str(value), quote=True)


def page_json(data: object) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no ``<!--``) and valid for JSON.parse."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(rep: Report) -> str:
    """The whole page."""
    css, js = _asset("page.css"), _asset("page.js")
    csp = (f"default-src 'none'; script-src {_sha(js)}; style-src {_sha(css)}; "
           "img-src 'self' file: data:; media-src 'self' file: data:; base-uri 'none'; form-action 'none'")
    name = rep.run_dir.resolve().name or str(rep.run_dir)
    body = [_header(rep, name), "<main>", _provenance(rep)]
    if rep.explanations is not None:
        body.append(_explanations(rep))
    if rep.evaluation is not None:
        body.append(_evaluation(rep))
    if rep.sanity is not None:
        body.append(_sanity(rep))
    body += [_files(rep), "</main>",
             f'<footer>Written by lmaczs report on {e(rep.generated)}. Open this file in a browser; '
             "it needs no server and no network.</footer>"]
    if rep.explanations is not None:
        body.append(f'<script id="lmaczs-data" type="application/json">'
                    f"{page_json(rep.explanations.data())}</script>\n<script>{js}</script>")
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<link rel="icon" href="data:,">\n<title>lmaczs report: {e(name)}</title>\n'
            f"<style>{css}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _header(rep: Report, name: str) -> str:
    parts = [f"<header><h1>lmaczs report: {e(name)}</h1>",
             f'<p class="sub">{e(rep.run_dir.resolve())}</p>']
    if rep.random_weights:
        items = "".join(f"<li>{e(w)}</li>" for w in rep.random_weights)
        parts.append('<div class="banner" id="random-weights"><strong>RANDOM WEIGHTS</strong> — '
                     "results in this folder come from a model with random, untrained weights: their "
                     f"similarities and explanations say nothing about sound.<ul>{items}</ul></div>")
    warnings = rep.runs.warnings()
    if warnings or rep.notices:
        items = "".join(f'<li>{e(w)} <span class="run">(run {e(rid)})</span></li>' for rid, w in warnings)
        items += "".join(f"<li>{e(n)}</li>" for n in rep.notices)
        parts.append(f'<div class="warnings" id="warnings"><strong>Warnings</strong><ul>{items}</ul></div>')
    links = [("provenance", "Provenance"), ("explanations", "Explanations"), ("evaluation", "Evaluation"),
             ("sanity", "Sanity checks"), ("files", "Files")]
    present = {"provenance": True, "explanations": rep.explanations is not None,
               "evaluation": rep.evaluation is not None, "sanity": rep.sanity is not None, "files": True}
    parts.append("<nav>" + "".join(f'<a href="#{k}">{t}</a>' for k, t in links if present[k]) + "</nav>")
    return "\n".join(parts) + "</header>"


def _provenance(rep: Report) -> str:
    out = ['<section id="provenance"><h2>Provenance</h2>']
    records = list(reversed(rep.runs.records))  # newest first
    if not records:
        out.append('<p class="note">No run record in this folder.</p>')
    for i, rec in enumerate(records):
        rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in summary_fields(rec))
        title = f"run {rec.get('run_id', '?')} — {rec.get('command', '?')}, {rec.get('started', '')}"
        out.append(f'<details class="run-record"{" open" if i == 0 else ""}><summary>{e(title)}'
                   f'{" (latest)" if i == 0 else ""}</summary><table class="fields">{rows}</table></details>')
    return "\n".join(out) + "</section>"


def _explanations(rep: Report) -> str:
    ex = rep.explanations
    assert ex is not None
    failed = len(ex.rows) - ex.n_ok
    from lmaczs_cli.report import count

    line = (f"{count(ex.n_ok, 'explanation')} of {count(len(ex.clips), 'clip')}"
            + (f", {count(failed, 'failed input')}" if failed else ""))
    sorts = [("similarity", "similarity s (high first)"),
             ("masked_similarity", "masked similarity s~ (high first)"),
             ("gap", "|s − s~| (small first)"), ("mask_mean", "mask mean (high first)"),
             ("rank", "rank"), ("prompt", "prompt (A–Z)"), ("method", "method"), ("clip", "clip name")]
    options = "".join(f'<option value="{k}">{t}</option>' for k, t in sorts)
    return f"""<section id="explanations"><h2>Explanations</h2>
<p>{e(line)}. Each clip: the original, then per prompt and method the map (input spectrogram,
mask, masked spectrogram), the explanation (what the mask keeps) and the residual (what it removes).
s is the model's similarity of the clip to the prompt, s~ that of the explanation.</p>
<form id="filters" autocomplete="off">
<label>prompt or label contains<input name="prompt" type="search"></label>
<label>clip contains<input name="clip" type="search"></label>
<label>method<select name="method"><option value="">all</option></select></label>
<label>run<select name="run"><option value="">all</option></select></label>
<label>status<select name="status"><option value="">all</option><option value="ok">explained</option>
<option value="failed">failed</option></select></label>
<label>sort by<select name="sort">{options}</select></label>
</form>
<p id="count"></p><div id="pager"></div><div id="clips"></div>
<noscript><p>The list of explanations needs JavaScript; the same rows are in
<a href="results.csv">results.csv</a>.</p></noscript>
</section>"""


def _ci_cell(c: Cell | None) -> str:
    if c is None or c.mean is None:
        return '<td class="num">–</td>'
    ci = f"[{_fmt(c.low)}, {_fmt(c.high)}]" if c.low is not None and c.high is not None else ""
    return f'<td class="num" title="n = {e(c.n)}">{_fmt(c.mean)}<span class="ci">{ci}</span></td>'


def _table(table_id: str, head: list[str], rows: list[str]) -> str:
    """A table that scrolls sideways on its own when it is wider than the page."""
    th = "".join(f"<th>{h}</th>" for h in head)
    return (f'<div class="wide"><table id="{table_id}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _evaluation(rep: Report) -> str:
    ev = rep.evaluation
    assert ev is not None
    head = ["method", "condition"] + [f'<span title="{e(METRIC_NOTES.get(m, ("", ""))[0])}">{e(m)}</span>'
                                      for m in ev.metrics] + ["n"]
    rows = []
    for method, condition, cells in ev.lines:
        ns = sorted({c.n for c in cells.values() if c.n})
        cols = "".join(_ci_cell(cells.get(m)) for m in ev.metrics)
        rows.append(f"<tr><td>{e(method)}</td><td>{e(condition)}</td>{cols}<td>{e('/'.join(ns))}</td></tr>")
    legend = "; ".join(f"{e(m)}: {e(METRIC_NOTES[m][0])} ({METRIC_NOTES[m][1]})"
                       for m in ev.metrics if m in METRIC_NOTES)
    plot = (f'<div class="plots"><img loading="lazy" src="{e(href(ev.plot, rep.run_dir))}" '
            'alt="mask mean against similarity"></div>' if ev.plot else "")
    return ('<section id="evaluation"><h2>Evaluation</h2><p>Mean over clips with its bootstrap 95 % '
            "confidence interval in brackets (summary.csv).</p>"
            f'{_table("summary", head, rows)}<p class="legend">{legend}</p>{plot}</section>')


def _sanity(rep: Report) -> str:
    san = rep.sanity
    assert san is not None
    out = ['<section id="sanity"><h2>Sanity checks</h2>']
    for m in san.methods:
        passed, line = verdict(m, san.pass_ssim)
        out.append(f'<p class="verdict {"pass" if passed else "fail"}">{e(line)}</p>')
        for extra in (chance_line(m), evidence_split_line(m)):
            if extra:
                out.append(f'<p class="legend">{e(extra.strip())}</p>')
    evidence = evidence_line(san.methods)
    if evidence:
        out.append(f'<p class="legend">{e(evidence)}</p>')
    if san.methods:
        keys = ("ssim_true_vs_wrong_prompt", "corr_mask_mean_similarity")
        rows = [f"<tr><td>{e(m.get('method', '?'))}</td>"
                + "".join(f"<td>{e(_fmt(m.get(k)))}</td>" for k in keys) + "</tr>" for m in san.methods]
        out.append(_table("prompts", ["method", "SSIM of maps, true vs wrong prompt", "corr(mask mean, s)"],
                          rows))
    if san.curve:
        methods, lines = san.curve_table()
        rows = [f"<tr><td>{e(step)}</td><td>{e(block)}</td>"
                + "".join(_ci_cell(cells.get(m)) for m in methods) + "</tr>" for step, block, cells in lines]
        out.append("<h3>SSIM of each method's maps to its maps from the intact model, per randomisation "
                   "step (mean [95 % CI])</h3>"
                   + _table("ssim", ["step", "randomised"] + [e(m) for m in methods], rows))
    imgs = "".join(f'<img loading="lazy" src="{e(href(p, rep.run_dir))}" alt="{e(p.stem)}">'
                   for p in san.plots)
    out.append(f'<div class="plots">{imgs}</div>')
    return "\n".join(out) + "</section>"


def _fmt(v: object) -> str:
    """A number for a table: 3 decimals below 10, 1 from 10 on (as wide as the CLI's tables)."""
    x = number(v)
    if x is None:
        return "–"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3f}"


def _files(rep: Report) -> str:
    items = "".join(f'<li><a href="{e(href(rep.run_dir / f, rep.run_dir))}">{e(f)}</a></li>'
                    for f in rep.files)
    return f'<section id="files"><h2>Files</h2><ul>{items}</ul></section>'
