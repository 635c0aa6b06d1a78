"""The report as one self-contained HTML page: plots embedded as data URIs, no external resource."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from sweep.analysis import Analysis
from sweep.report.answer import DEFAULT_TITLE, overview, short_answer
from sweep.report.plots import FOREST_PNG, Plot
from sweep.report.tables import Table, arrange, tables

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.answer li { font-size: 1.05rem; margin-bottom: 0.3rem; }
.verdict li { margin-bottom: 0.3rem; }
.note, .overview { color: #555; }
.status { font-weight: 600; padding: 0.05rem 0.4rem; border-radius: 0.3rem; white-space: nowrap; }
.confirmed, .better { background: #d8f0d8; } .refuted, .worse { background: #f6d5d5; }
.cannot-tell { background: #fbecc8; } .not-tested { background: #e8e8e8; }
.equivalent { background: #d8e6f6; }
figure { margin: 1rem 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9rem; }
"""
_BADGES = {"confirmed", "refuted", "cannot tell", "not tested", "better", "worse", "equivalent"}


def render_html(analysis: Analysis, title: str = DEFAULT_TITLE, plots: Sequence[Plot] = ()) -> str:
    """The report as one HTML page: the short answer and the forest plot first, then the detail."""
    e = html.escape
    body = [f"<h1>{e(title)}</h1>", "<h2>The answer</h2>", "<ul class='answer'>"]
    body += [f"<li>{e(sentence)}</li>" for sentence in short_answer(analysis)]
    body.append("</ul>")
    body += _figures([p for p in plots if p.file == FOREST_PNG])
    body += [f"<p class='overview'>{e(overview(analysis))}</p>", "<h2>Verdict</h2>", "<ul class='verdict'>"]
    body += [f"<li>{e(sentence)}</li>" for sentence in analysis.verdict]
    body.append("</ul>")
    sections = tables(analysis)
    beside, rest = arrange(sections, [p for p in plots if p.file != FOREST_PNG])
    for table, figures in zip(sections, beside, strict=True):
        body += _table(table) + _figures(figures)
    if rest:
        body += ["<h2>Figures</h2>", *_figures(rest)]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _table(table: Table) -> list[str]:
    e = html.escape
    out = [
        f"<h2>{e(table.title)}</h2>",
        "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.headers) + "</tr></thead><tbody>",
    ]
    out += ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows]
    out.append("</tbody></table>")
    if table.note:
        out.append(f"<p class='note'>{e(table.note)}</p>")
    return out


def _figures(plots: Sequence[Plot]) -> list[str]:
    e = html.escape
    out = []
    for plot in plots:
        if plot.png is None:
            out.append(f"<p class='note'>{e(plot.caption)}: skipped, {e(plot.skipped or '')}.</p>")
            continue
        data = base64.b64encode(plot.png).decode("ascii")
        out.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{e(plot.caption)}">'
            f"<figcaption>{e(plot.caption)}</figcaption></figure>"
        )
    return out


def _cell(text: str) -> str:
    if text in _BADGES:
        css = text.replace(" ", "-")
        return f"<td><span class='status {css}'>{html.escape(text)}</span></td>"
    return f"<td>{html.escape(text)}</td>"
