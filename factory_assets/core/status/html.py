"""The factory status grid as one static HTML page (`reports/status.html`): failing cells stand out.

With the cells' pages (`core.status.reports.CellPages`), each row also links its model card and drift
report and draws sparklines of realised AUC and scored volume per month (inline SVG); a small inline
script filters the rows by market, model and health. Nothing is fetched at view time.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from factory_assets.core.status.grid import display_frame, worst_first
from factory_assets.core.status.svg import sparkline

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a1a1a; }
h1 { font-size: 1.3rem; margin-bottom: 0.2rem; }
.summary span { display: inline-block; margin-right: 1rem; padding: 0.2rem 0.6rem; border-radius: 4px; }
table { border-collapse: collapse; font-size: 0.85rem; margin-top: 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
tr.failing td { background: #fde2e1; }
tr.failing td.health { background: #c62828; color: #fff; font-weight: bold; }
tr.attention td { background: #fff6d6; }
tr.attention td.health { background: #f9a825; font-weight: bold; }
tr.ok td.health { background: #e3f4e4; color: #1b5e20; }
span.failing { background: #c62828; color: #fff; }
span.attention { background: #f9a825; }
span.ok { background: #e3f4e4; color: #1b5e20; }
.filters label { margin-right: 1rem; font-size: 0.85rem; }
.muted { color: #777; }
"""
FILTER_SCRIPT = """
function applyFilters() {
  const want = {};
  document.querySelectorAll('.filters select').forEach(s => { want[s.name] = s.value; });
  let shown = 0;
  document.querySelectorAll('tbody tr').forEach(row => {
    const ok = Object.entries(want).every(([k, v]) => !v || row.dataset[k] === v);
    row.hidden = !ok; if (ok) shown += 1;
  });
  document.getElementById('shown').textContent = shown;
}
document.querySelectorAll('.filters select').forEach(s => s.addEventListener('change', applyFilters));
"""


def _links(page: Any) -> str:
    links = []
    if page is not None and page.card:
        links.append(f'<a class="card-link" href="{html.escape(page.card)}">card</a>')
    if page is not None and page.drift:
        links.append(f'<a class="drift-link" href="{html.escape(page.drift)}">drift</a>')
    return " ".join(links) or '<span class="muted">-</span>'


def _trends(page: Any, name: str) -> str:
    if page is None:
        return ""
    auc = sparkline(f"auc_{name}", [v for _, v in page.auc], [d for d, _ in page.auc])
    volume = sparkline(f"volume_{name}", [v for _, v in page.volume], [d for d, _ in page.volume])
    return (
        f'<span title="realised AUC per month">{auc}</span> '
        f'<span title="scored customers per month">{volume}</span>'
    )


def _row(cells: pd.Series, cell: pd.Series, titles: dict[str, str], extra: list[str] | None = None) -> str:
    tds = []
    for column, value in cells.items():
        css = ' class="health"' if column == "health" else ""
        title = f' title="{html.escape(titles[column])}"' if titles.get(column) else ""
        tds.append(f"<td{css}{title}>{html.escape(str(value))}</td>")
    tds.extend(f"<td>{content}</td>" for content in extra or [])
    health, market, model = (html.escape(str(cell[k])) for k in ("health", "market", "model"))
    data = f'data-health="{health}" data-market="{market}" data-model="{model}"'
    return f'<tr class="{health}" {data}>{"".join(tds)}</tr>'


def _table(grid: pd.DataFrame, pages: Mapping[tuple[str, str], Any] | None) -> str:
    if grid.empty:
        return "<p>No cells yet: no market has been ingested.</p>"
    shown = display_frame(grid)
    names = [*shown.columns, *(["trend (AUC, volume)", "reports"] if pages is not None else [])]
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in names)
    rows = []
    for i in range(len(grid)):
        cell = grid.iloc[i]
        titles = {"decision": cell["last_decision_reason"], "problem": cell["problem"]}
        titles = {k: v for k, v in titles.items() if isinstance(v, str)}
        extra = None
        if pages is not None:
            page = pages.get((cell["market"], cell["model"]))
            extra = [_trends(page, f"{cell['market']}_{cell['model']}"), _links(page)]
        rows.append(_row(shown.iloc[i], cell, titles, extra))
    body = "\n".join(rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _filters(grid: pd.DataFrame) -> str:
    """Select boxes for market, model and health (the inline script hides the other rows)."""
    boxes = []
    for column in ("market", "model", "health"):
        values = sorted(grid[column].astype(str).unique()) if not grid.empty else []
        options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
        boxes.append(
            f'<label>{column} <select name="{column}" id="filter-{column}"><option value="">all</option>'
            f"{options}</select></label>"
        )
    return f'<div class="filters">{"".join(boxes)} showing <span id="shown">{len(grid)}</span> cells</div>'


def render_status_html(
    grid: pd.DataFrame, generated_at: dt.datetime, pages: Mapping[tuple[str, str], Any] | None = None
) -> str:
    """A self-contained HTML page of the grid: worst cells first, coloured by health, filterable.

    `pages` (per (market, model), a `core.status.reports.CellPages`) adds the trend sparklines and
    the links to each cell's card and drift report.
    """
    grid = worst_first(grid) if not grid.empty else grid
    counts = grid["health"].value_counts() if not grid.empty else pd.Series(dtype=int)
    summary = "".join(
        f'<span class="{h}">{counts.get(h, 0)} {h}</span>' for h in ("failing", "attention", "ok")
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Model factory status</title><style>{STYLE}</style></head><body>"
        f"<h1>Model factory status</h1><p>Generated {generated_at:%Y-%m-%d %H:%M} UTC; "
        f"{len(grid)} cells, worst first; hover a decision or problem for the full text.</p>"
        f'<div class="summary">{summary}</div>{_filters(grid)}{_table(grid, pages)}'
        f"<script>{FILTER_SCRIPT}</script></body></html>\n"
    )
