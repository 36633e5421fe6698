"""The factory status grid as one static HTML page (`reports/status.html`): failing cells stand out."""

from __future__ import annotations

import datetime as dt
import html

import pandas as pd

from factory_assets.core.status.grid import display_frame, worst_first

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
"""


def _row(cells: pd.Series, health: str, titles: dict[str, str]) -> str:
    tds = []
    for column, value in cells.items():
        css = ' class="health"' if column == "health" else ""
        title = f' title="{html.escape(titles[column])}"' if titles.get(column) else ""
        tds.append(f"<td{css}{title}>{html.escape(str(value))}</td>")
    return f'<tr class="{health}">{"".join(tds)}</tr>'


def _table(grid: pd.DataFrame) -> str:
    if grid.empty:
        return "<p>No cells yet: no market has been ingested.</p>"
    shown = display_frame(grid)
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for i in range(len(grid)):
        cell = grid.iloc[i]
        titles = {"decision": cell["last_decision_reason"], "problem": cell["problem"]}
        titles = {k: v for k, v in titles.items() if isinstance(v, str)}
        rows.append(_row(shown.iloc[i], cell["health"], titles))
    body = "\n".join(rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>\n{body}\n</tbody></table>"


def render_status_html(grid: pd.DataFrame, generated_at: dt.datetime) -> str:
    """A self-contained HTML page of the grid: worst cells first, coloured by health."""
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
        f'<div class="summary">{summary}</div>{_table(grid)}</body></html>\n'
    )
