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
It is computed once per market for every spec that asks (`history.py`, `prep.history`); this module
says what a spec asks for and how each feature is computed.
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
class HistoryFeature:
    """One history feature: `kind` of the numeric CAR column `source` over `months` months.

    Kinds: `lag`, `delta` (months = k), `mean`, `max`, `min`, `std`, `trend` (months = window),
    `recency` (months = 0: the whole history). The name, the SQL and the window follow from these.
    """

    name: str
    source: str
    kind: str
    months: int

    @property
    def window(self) -> str:
        """The name of the SQL window it is computed over."""
        if self.kind == "recency":
            return "_all"
        return f"_l{self.months}" if self.kind in ("lag", "delta") else f"_w{self.months}"

    @property
    def reach(self) -> int | None:
        """Months before t the feature reads (None: every earlier month, recency)."""
        if self.kind == "recency":
            return None
        return self.months if self.kind in ("lag", "delta") else self.months - 1

    def sql(self, carried: str | None = None) -> str:
        """The SQL over the window input (`_cid`, `_mi`, the source as DOUBLE).

        `carried` (recency only) is a column holding the last month > 0 before the input starts,
        for a computation over a suffix of the months (`core.prep.history`).
        """
        value, over = quote(self.source), f"over {self.window}"
        if self.kind == "lag":
            return f"max({value}) {over}"
        if self.kind == "delta":
            return f"{value} - max({value}) {over}"
        if self.kind == "trend":
            return f"regr_slope({value}, _mi) {over}"
        if self.kind == "recency":
            last = f"max(case when {value} > 0 then _mi end) {over}"
            return f"_mi - {last}" if carried is None else f"_mi - greatest({last}, {carried})"
        return f"{_AGGREGATES[self.kind]}({value}) {over}"


def window_clause(features: list[HistoryFeature]) -> str:
    """The WINDOW clause defining every window `features` use (empty when none)."""
    frame = "partition by _cid order by _mi range between"
    parts = {}
    for feature in sorted(features, key=lambda f: (f.window[:2], f.months)):
        if feature.kind == "recency":
            parts["_all"] = f"_all as ({frame} unbounded preceding and current row)"
        elif feature.kind in ("lag", "delta"):
            k = feature.months
            parts[feature.window] = f"{feature.window} as ({frame} {k} preceding and {k} preceding)"
        else:
            w = feature.months
            parts[feature.window] = f"{feature.window} as ({frame} {w - 1} preceding and current row)"
    return "window " + ", ".join(parts.values()) if parts else ""


@dataclass(frozen=True)
class FeaturePlan:
    """Base columns and history features of a spec."""

    base: list[Candidate]
    history: list[Candidate]
    unsupported: dict[str, str] = field(default_factory=dict)
    history_features: list[HistoryFeature] = field(default_factory=list)
    """How each history candidate is computed (the market's history table holds them)."""

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


def base_expression(candidate: Candidate, columns: dict[str, str], alias: str) -> str:
    """The frame's value of a base column: numbers as numbers, strings as VARCHAR."""
    column = f"{alias}.{quote(candidate.name)}"
    if candidate.kind == "string":
        return f"cast({column} as varchar)"
    if candidate.kind == "float":
        return f"cast({column} as double)"
    if columns[candidate.name].upper() == "BOOLEAN":
        return f"cast({column} as integer)"
    return column


def _history_features(column: str, history: HistorySpec) -> list[HistoryFeature]:
    found = [HistoryFeature(f"{column}__lag{k}", column, "lag", k) for k in history.lags]
    for w in history.windows:
        found += [HistoryFeature(f"{column}__{a}{w}", column, a, w) for a in history.aggregations]
    if history.deltas:
        found += [HistoryFeature(f"{column}__delta{k}", column, "delta", k) for k in history.lags]
    if history.trends:
        found += [HistoryFeature(f"{column}__trend{w}", column, "trend", w) for w in history.windows]
    return found


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
    features = [f for c in dict.fromkeys(history.columns) for f in _history_features(c, history)]
    features += [HistoryFeature(f"{c}__recency", c, "recency", 0) for c in dict.fromkeys(history.recency)]
    features = list({f.name: f for f in features}.values())
    clash = sorted({f.name for f in features} & set(columns))
    if clash:
        raise PrepError(f"{cell}: history feature name(s) {clash} clash with CAR columns")
    derived = [Candidate(f.name, "float", f.source, derived=True) for f in features]
    return FeaturePlan(base, derived, unsupported, features)
