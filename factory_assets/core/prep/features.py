"""Candidate features of a spec: base CAR columns at t and per-customer history in SQL windows.

History windows are RANGE frames over the month number (`_mi`), so a missing month never shifts a
lag. For a customer at month t (months where the customer is absent simply hold no row):
- `<col>__lag<k>`: the value at t - k; NULL when that month has no row or no value.
- `<col>__delta<k>`: value at t minus `<col>__lag<k>`; NULL when either is NULL.
- `<col>__mean|max|min<w>`: over the months t - w + 1 .. t that exist (short history: over what
  exists, at least the current row); NULL only when every value in the window is NULL.
- `<col>__std<w>`: sample standard deviation over the same window; NULL with fewer than 2 values.
- `<col>__trend<w>`: least-squares slope per month (`regr_slope(value, month)`) over the window;
  NULL with fewer than 2 months holding a value.
- `<col>__recency`: months since the value was last > 0, up to and including t (0 = now); NULL when
  it was never > 0 in the history the CAR holds.
History uses every CAR row of the customer, also months in which the customer was not eligible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from factory_assets.core.prep.sql import NON_FEATURES, Kind, PrepError, is_numeric, kind_of, quote
from factory_assets.core.specs import HistorySpec, ModelSpec

RESERVED = frozenset({"_cid", "_sd", "_mi", "_ov", "_present", "_observable", "_target"})
_AGGREGATES = {"mean": "avg", "max": "max", "min": "min", "std": "stddev_samp"}


@dataclass(frozen=True)
class Candidate:
    """One candidate feature column of the training frame."""

    name: str
    kind: Kind
    source: str
    derived: bool = False


@dataclass(frozen=True)
class FeaturePlan:
    """Base columns and history features of a spec, with the SQL that computes them."""

    base: list[Candidate]
    history: list[Candidate]
    unsupported: dict[str, str] = field(default_factory=dict)
    history_inputs: list[str] = field(default_factory=list)
    history_select: list[str] = field(default_factory=list)
    windows: str = ""
    outer: dict[str, str] = field(default_factory=dict)
    """History features computed after the windows (deltas): name -> SQL on the row `t` and `h`."""

    @property
    def candidates(self) -> list[Candidate]:
        """Every candidate feature, base columns first, in frame column order."""
        return [*self.base, *self.history]


def _missing(columns: dict[str, str], names: list[str], where: str, cell: str) -> None:
    absent = [n for n in names if n not in columns]
    if absent:
        raise PrepError(f"{cell}: {where} names column(s) {absent} that the CAR does not hold")


def base_candidates(
    spec: ModelSpec, columns: dict[str, str], label_columns: frozenset[str], cell: str
) -> tuple[list[Candidate], dict[str, str]]:
    """Base feature columns (include, or every non-key, non-label column; minus exclude).

    Columns of unsupported types (dates, lists, ...) are returned apart, name -> type.
    """
    _missing(columns, list(spec.features.include), "features.include", cell)
    clash = sorted(RESERVED & set(columns))
    if clash:
        raise PrepError(f"{cell}: CAR column(s) {clash} use names reserved by the preparation")
    names = list(spec.features.include) or [c for c in columns if c not in NON_FEATURES | label_columns]
    names = [n for n in names if n not in set(spec.features.exclude) | NON_FEATURES]
    kept, unsupported = [], {}
    for name in names:
        kind = kind_of(columns[name])
        if kind == "unsupported":
            unsupported[name] = columns[name]
        else:
            kept.append(Candidate(name, "float" if kind == "null" else kind, name))
    return kept, unsupported


def base_select(candidate: Candidate, columns: dict[str, str], alias: str) -> str:
    """The frame expression of a base column: numbers as numbers, strings as VARCHAR."""
    column = f"{alias}.{quote(candidate.name)}"
    if candidate.kind == "string":
        expr = f"cast({column} as varchar)"
    elif candidate.kind == "float":
        expr = f"cast({column} as double)"
    elif columns[candidate.name].upper() == "BOOLEAN":
        expr = f"cast({column} as integer)"
    else:
        expr = column
    return f"{expr} as {quote(candidate.name)}"


def _history_exprs(column: str, history: HistorySpec) -> list[tuple[str, str]]:
    value = quote(column)
    exprs = [(f"{column}__lag{k}", f"max({value}) over _l{k}") for k in history.lags]
    for w in history.windows:
        exprs += [
            (f"{column}__{a}{w}", f"{_AGGREGATES[a]}({value}) over _w{w}") for a in history.aggregations
        ]
    if history.deltas:  # computed outside the window query, from the lag (see `FeaturePlan.outer`)
        exprs += [(f"{column}__delta{k}", "") for k in history.lags]
    if history.trends:
        exprs += [(f"{column}__trend{w}", f"regr_slope({value}, _mi) over _w{w}") for w in history.windows]
    return exprs


def _recency_expr(column: str) -> tuple[str, str]:
    return f"{column}__recency", f"_mi - max(case when {quote(column)} > 0 then _mi end) over _all"


def _windows(history: HistorySpec) -> str:
    frame = "partition by _cid order by _mi range between"
    parts = []
    if history.columns:
        parts += [f"_l{k} as ({frame} {k} preceding and {k} preceding)" for k in sorted(set(history.lags))]
        parts += [
            f"_w{w} as ({frame} {w - 1} preceding and current row)" for w in sorted(set(history.windows))
        ]
    if history.recency:
        parts.append(f"_all as ({frame} unbounded preceding and current row)")
    return "window " + ", ".join(parts) if parts else ""


def _numeric_inputs(names: list[str], columns: dict[str, str], cell: str) -> None:
    for name in names:
        if not is_numeric(kind_of(columns[name])):
            raise PrepError(f"{cell}: history column '{name}' has type {columns[name]}, not a number")


def plan_features(
    spec: ModelSpec, columns: dict[str, str], label_columns: frozenset[str], cell: str
) -> FeaturePlan:
    """Candidate base columns and history features of `spec` on a CAR with `columns`."""
    base, unsupported = base_candidates(spec, columns, label_columns, cell)
    history = spec.features.history
    inputs = list(dict.fromkeys([*history.columns, *history.recency]))
    _missing(columns, inputs, "features.history", cell)
    _numeric_inputs(inputs, columns, cell)
    exprs = [(c, *pair) for c in dict.fromkeys(history.columns) for pair in _history_exprs(c, history)]
    exprs += [(c, *_recency_expr(c)) for c in dict.fromkeys(history.recency)]
    clash = sorted({name for _, name, _ in exprs} & set(columns))
    if clash:
        raise PrepError(f"{cell}: history feature name(s) {clash} clash with CAR columns")
    derived = [Candidate(name, "float", source, derived=True) for source, name, _ in exprs]
    select = [f"{sql} as {quote(name)}" for _, name, sql in exprs if sql]
    outer = {
        f"{c}__delta{k}": f"cast(t.{quote(c)} as double) - h.{quote(f'{c}__lag{k}')}"
        for c in history.columns
        for k in (history.lags if history.deltas else [])
    }
    return FeaturePlan(base, derived, unsupported, inputs, select, _windows(history), outer)
