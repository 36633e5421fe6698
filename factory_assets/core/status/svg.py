"""Small inline SVG charts for the status page and the model cards: no library, no network.

Every chart is an `<svg class="chart" data-chart="<name>">`; every plotted value is an element with
class `point` carrying `data-x` and `data-y` (a circle on a line, a bar), so a page can be checked
for drawn data without reading pixels, and a reader can hover a point for its value.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a")
PAD = 34


@dataclass(frozen=True)
class Series:
    """One line: a name and its (x, y) points (x and y as numbers; `labels` name the x values)."""

    name: str
    points: Sequence[tuple[float, float]]
    labels: Sequence[str] = ()
    dashed: bool = False


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _span(values: Sequence[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    if fixed is not None:
        return fixed
    finite = _finite(values) or [0.0, 1.0]
    low, high = min(finite), max(finite)
    return (low - 0.5, high + 0.5) if high == low else (low, high)


def _scale(value: float, span: tuple[float, float], start: float, length: float) -> float:
    return start + (value - span[0]) / (span[1] - span[0]) * length


def _open(name: str, width: int, height: int, title: str) -> str:
    label = html.escape(title)
    return (
        f'<svg class="chart" data-chart="{html.escape(name)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}"><title>{label}</title>'
    )


def _axes(width: int, height: int, x_span: tuple[float, float], y_span: tuple[float, float]) -> str:
    bottom, right = height - PAD, width - 10
    ticks = []
    for value in (y_span[0], (y_span[0] + y_span[1]) / 2, y_span[1]):
        y = _scale(value, y_span, bottom, -(height - PAD - 10))
        ticks.append(f'<text x="{PAD - 4}" y="{y + 3:.1f}" text-anchor="end" class="tick">{value:.3g}</text>')
    return (
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{bottom}" stroke="#999"/>'
        f'<line x1="{PAD}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>' + "".join(ticks)
    )


def line_chart(
    name: str,
    title: str,
    series: Sequence[Series],
    width: int = 420,
    height: int = 220,
    y_span: tuple[float, float] | None = None,
    x_span: tuple[float, float] | None = None,
) -> str:
    """Lines with a dot per point, axes with three y ticks, first and last x labels and a legend."""
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    xr, yr = _span(xs, x_span), _span(ys, y_span)
    plot_w, plot_h = width - PAD - 10, height - PAD - 10
    parts = [_open(name, width, height, title), _axes(width, height, xr, yr)]
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        drawn = [(x, y) for x, y in s.points if y is not None and math.isfinite(y)]
        coords = [(_scale(x, xr, PAD, plot_w), _scale(y, yr, height - PAD, -plot_h)) for x, y in drawn]
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{path}"/>')
        labels = list(s.labels) or [f"{x:.3g}" for x, _ in drawn]
        for (_, y), (cx, cy), label in zip(drawn, coords, labels, strict=False):
            tip = html.escape(f"{s.name}: {label} = {y:.4g}")
            parts.append(
                f'<circle class="point" data-series="{html.escape(s.name)}" data-x="{html.escape(label)}" '
                f'data-y="{y:.6g}" cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
                f"<title>{tip}</title></circle>"
            )
        parts.append(
            f'<text x="{PAD + 8 + 130 * i}" y="{height - 6}" fill="{colour}" class="legend">'
            f"{html.escape(s.name)}</text>"
        )
    first = next((s.labels[0] for s in series if s.labels), None)
    last = next((s.labels[-1] for s in series if s.labels), None)
    if first is not None and last is not None:
        parts.append(f'<text x="{PAD}" y="{height - PAD + 13}" class="tick">{html.escape(first)}</text>')
        parts.append(
            f'<text x="{width - 10}" y="{height - PAD + 13}" text-anchor="end" class="tick">'
            f"{html.escape(last)}</text>"
        )
    return "".join(parts) + "</svg>"


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float], width: int = 420) -> str:
    """Horizontal bars, one per label, longest first as given, each with its value."""
    row, label_w = 18, 170
    height = 10 + row * max(len(values), 1)
    top = max(_finite(values) or [1.0]) or 1.0
    parts = [_open(name, width, height, title)]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row
        length = max(0.0, value) / top * (width - label_w - 60)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end" class="tick">'
            f"{html.escape(label[:28])}</text>"
            f'<rect class="point" data-x="{html.escape(label)}" data-y="{value:.6g}" '
            f'x="{label_w}" y="{y + 2}" '
            f'width="{length:.1f}" height="{row - 5}" fill="{COLOURS[0]}"><title>{html.escape(label)}: '
            f"{value:.4g}</title></rect>"
            f'<text x="{label_w + length + 4:.1f}" y="{y + 12}" class="tick">{value:.3g}</text>'
        )
    return "".join(parts) + "</svg>"


def sparkline(
    name: str, values: Sequence[float], labels: Sequence[str], width: int = 90, height: int = 22
) -> str:
    """A tiny line of `values` (no axes); the last point is marked. Empty values draw nothing."""
    drawn = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not drawn:
        return '<span class="muted">-</span>'
    span = _span([v for _, v in drawn], None)
    x_span = (0.0, float(max(len(values) - 1, 1)))
    coords = [(_scale(i, x_span, 3, width - 6), _scale(v, span, height - 3, -(height - 6))) for i, v in drawn]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    points = "".join(
        f'<circle class="point" data-x="{html.escape(labels[i])}" data-y="{v:.6g}" cx="{x:.1f}" cy="{y:.1f}" '
        f'r="{2 if k == len(drawn) - 1 else 1}" fill="{COLOURS[0]}"><title>{html.escape(labels[i])}: '
        f"{v:.4g}</title></circle>"
        for k, ((i, v), (x, y)) in enumerate(zip(drawn, coords, strict=True))
    )
    return (
        f'<svg class="chart spark" data-chart="{html.escape(name)}" width="{width}" height="{height}">'
        f'<polyline fill="none" stroke="{COLOURS[0]}" stroke-width="1.2" points="{path}"/>{points}</svg>'
    )
