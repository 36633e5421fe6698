"""A model card per cell: one static HTML page with inline SVG charts (`reports/cards/<market>/<model>.html`).

What the analyst and the marketing user look at: the spec in words, the data window and population,
the features kept and dropped with the reasons, the test metrics, gains, lift and calibration on the
out-of-time test (from the calibration deciles the challenger recorded), the score distribution of
the release against the previous one, realised AUC over time against the test AUC, the top drifting
features with a link to the Evidently report, the decision history and the top features by
importance. Pure rendering of a `CardData`; no script, nothing fetched at view time.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from factory_assets.core.specs import ModelSpec
from factory_assets.core.status.card_data import CardData
from factory_assets.core.status.svg import Series, bar_chart, line_chart

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a1a1a; max-width: 70rem; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.6rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.charts { display: flex; flex-wrap: wrap; gap: 1.2rem; }
.tick, .legend { font-size: 10px; fill: #555; } .legend { font-size: 11px; }
.muted { color: #777; }
"""
SCORE_BINS = 20
TOP_DRIFT = 10


def _esc(value: object) -> str:
    return html.escape(str(value))


def _table(frame: pd.DataFrame, empty: str) -> str:
    if frame.empty:
        return f'<p class="muted">{_esc(empty)}</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc('' if pd.isna(v) else v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def spec_in_words(spec: ModelSpec) -> str:
    """What the model predicts and for whom, as a sentence."""
    target = spec.target
    if target.kind == "movement":
        what = (
            f"the probability that a customer holding {target.product} = {' or '.join(target.from_)} holds "
            f"{' or '.join(target.to)} {target.horizon} month(s) later"
        )
    else:
        what = f"the label column '{target.column}' (horizon {target.horizon} month(s))"
    population = "; ".join(f"{f.column} {f.op} {f.value}" for f in spec.population) or "every customer"
    output = {
        "probability": "natural probabilities",
        "percentile": "percentile ranks",
        "both": "probabilities and percentile ranks",
    }
    return (
        f"{spec.description + ' ' if spec.description else ''}Predicts {what}. Population: {population}. "
        f"Released as {output[spec.output.format]} with deciles."
    )


def _window(data: CardData) -> str:
    row, m = data.model_row, data.metrics
    items = {
        "training snapshots": f"{row.get('first_snapshot', '?')} to {row.get('last_snapshot', '?')}",
        "out-of-time test snapshot(s)": row.get("test_snapshots", "?"),
        "test rows / positives / base rate": f"{m.get('rows', '?')} / {m.get('positives', '?')} / "
        f"{m.get('base_rate', float('nan')):.4f}",
        "scored population (release)": data.manifest.rows if data.manifest else "no release",
        "scored snapshot": data.manifest.snapshot_date if data.manifest else "-",
    }
    return _table(pd.DataFrame(list(items.items()), columns=["", "value"]), "")


def _metrics(data: CardData) -> str:
    shown = {k: v for k, v in data.metrics.items() if isinstance(v, int | float)}
    frame = pd.DataFrame([(k, f"{v:.4g}") for k, v in shown.items()], columns=["test metric", "value"])
    return _table(frame, "no test metrics recorded")


def gains_and_lift(calibration: Sequence[dict[str, float]]) -> tuple[list[tuple[float, float]], list[float]]:
    """Share of positives captured by share of population (highest scores first); lift per decile."""
    groups = sorted(calibration, key=lambda g: -g["decile"])
    positives = [g["observed_rate"] * g["rows"] for g in groups]
    rows, total = sum(g["rows"] for g in groups), sum(positives)
    base = total / rows if rows else 0.0
    gains, seen, captured = [(0.0, 0.0)], 0, 0.0
    for group, found in zip(groups, positives, strict=True):
        seen, captured = seen + group["rows"], captured + found
        gains.append((seen / rows, captured / total if total else 0.0))
    lift = [g["observed_rate"] / base if base else 0.0 for g in groups]
    return gains, lift


def _test_charts(data: CardData) -> str:
    calibration = data.metrics.get("calibration") or []
    if not calibration:
        return '<p class="muted">no calibration deciles recorded for the test</p>'
    gains, lift = gains_and_lift(calibration)
    share = [f"{x:.0%}" for x, _ in gains]
    deciles = [f"decile {i + 1}" for i in range(len(lift))]
    top = max(max(g["mean_predicted"], g["observed_rate"]) for g in calibration) or 1.0
    return (
        '<div class="charts">'
        + line_chart(
            "gains",
            "Gains on the out-of-time test: share of positives in the top x% of scores",
            [Series("model", gains, share), Series("random", [(0, 0), (1, 1)], ["0%", "100%"], dashed=True)],
            y_span=(0, 1),
            x_span=(0, 1),
        )
        + line_chart(
            "lift",
            "Lift per decile (1 = highest scores)",
            [Series("lift", [(i + 1, v) for i, v in enumerate(lift)], deciles)],
        )
        + line_chart(
            "calibration",
            "Calibration: observed rate against mean predicted probability per decile",
            [
                Series("observed", [(g["mean_predicted"], g["observed_rate"]) for g in calibration]),
                Series("perfect", [(0, 0), (top, top)], dashed=True),
            ],
            y_span=(0, top),
            x_span=(0, top),
        )
        + "</div>"
    )


def score_histogram(current: np.ndarray, previous: np.ndarray | None) -> list[Series]:
    """Share of customers per probability bin, for the release and the previous one (same bins)."""
    values = [current] if previous is None else [current, previous]
    top = max(float(np.max(v)) for v in values if len(v)) or 1.0
    edges = np.linspace(0.0, top, SCORE_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    series = []
    for name, scores in zip(("this release", "previous release"), values, strict=False):
        counts, _ = np.histogram(scores, bins=edges)
        shares = counts / max(len(scores), 1)
        series.append(
            Series(
                name, list(zip(centres.tolist(), shares.tolist(), strict=True)), dashed=name != "this release"
            )
        )
    return series


def _distribution(data: CardData) -> str:
    if data.current_scores is None or not len(data.current_scores):
        return '<p class="muted">no release in force</p>'
    note = (
        f"against the previous release {_esc(data.previous_release)}"
        if data.previous_release
        else "the first release of this cell: nothing to compare with"
    )
    chart = line_chart(
        "score_distribution",
        "Released probabilities: share of customers per bin",
        score_histogram(data.current_scores, data.previous_scores),
    )
    return f"<p>{note}</p>{chart}"


def _realised(data: CardData) -> str:
    test_auc = data.metrics.get("auc")
    frame = data.realised.dropna(subset=["auc"]) if not data.realised.empty else data.realised
    if frame.empty:
        return '<p class="muted">no realised performance yet: the released months have no outcomes yet</p>'
    labels = [str(pd.Timestamp(d).date()) for d in frame["snapshot_date"]]
    points = list(enumerate(frame["auc"].astype(float)))
    series = [Series("realised AUC", points, labels)]
    if isinstance(test_auc, float):
        series.append(Series("test AUC", [(0, test_auc), (max(len(points) - 1, 1), test_auc)], dashed=True))
    return line_chart("realised_auc", "Realised AUC per scored month against the test AUC", series)


def _drift(data: CardData, drift_href: str | None) -> str:
    if not data.drift:
        return '<p class="muted">no drift measured yet</p>'
    psi = json.loads(data.drift["feature_psi"]) if isinstance(data.drift.get("feature_psi"), str) else {}
    top = sorted(((k, float(v)) for k, v in psi.items() if v is not None), key=lambda kv: -kv[1])[:TOP_DRIFT]
    link = (
        f'<a class="drift-report" href="{_esc(drift_href)}">Evidently drift report</a>'
        if drift_href
        else "no report file"
    )
    share = data.drift.get("drift_share")
    summary = (
        f"Drift share {share:.2f} on {data.drift.get('snapshot_date')}; " if isinstance(share, float) else ""
    )
    chart = bar_chart("drift_psi", "Top drifting features (PSI)", [k for k, _ in top], [v for _, v in top])
    return f"<p>{summary}{link}</p>{chart if top else ''}"


def _decisions(data: CardData) -> str:
    frame = data.decisions.copy()
    if not frame.empty:
        frame["live_version"] = frame["live_version"].astype(str).str[:12]
    return _table(frame, "no champion decision yet")


def _importance(data: CardData) -> str:
    if not data.importance:
        return f'<p class="muted">no feature importance available {_esc(data.importance_note)}</p>'
    return bar_chart(
        "importance",
        "Top features by importance",
        [k for k, _ in data.importance],
        [v for _, v in data.importance],
    )


def render_card(data: CardData, drift_href: str | None, status_href: str) -> str:
    """The card of one cell as a self-contained HTML page; links are relative to the card."""
    m = data.manifest
    head = (
        f"release {_esc(m.release_id)} of {_esc(m.snapshot_date)}, model {_esc(m.model_version[:12])}, "
        f"released {_esc(m.released_at)}"
        if m
        else "no release in force"
    )
    sections = [
        ("What it predicts", f"<p>{_esc(spec_in_words(data.spec))}</p>"),
        ("Data window and population", _window(data)),
        ("Test metrics (out-of-time)", _metrics(data)),
        ("Gains, lift and calibration on the out-of-time test", _test_charts(data)),
        ("Score distribution", _distribution(data)),
        ("Realised performance", _realised(data)),
        ("Drift", _drift(data, drift_href)),
        ("Top features by importance", _importance(data)),
        ("Decision history", _decisions(data)),
        ("Features kept and dropped", _table(data.variables, "no variable decisions recorded")),
    ]
    body = "".join(f"<h2>{_esc(title)}</h2>{content}" for title, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Model card {_esc(data.market)}/{_esc(data.model)}</title><style>{STYLE}</style></head><body>"
        f'<p><a class="status-link" href="{_esc(status_href)}">Factory status</a></p>'
        f"<h1>Model card: {_esc(data.market)} / {_esc(data.model)}</h1><p>{head}</p>{body}</body></html>\n"
    )
