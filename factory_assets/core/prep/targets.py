"""The target of a model spec, as SQL over the market's CAR.

Movement target (`product` value at t in `from`, outcome at t + horizon):
- eligible at t: the `product` value is one of `from` and every population filter holds (a NULL in a
  filter column or in `product` makes the row ineligible);
- outcome 1: the value at t + horizon is one of `to`, or the customer is absent from that snapshot
  and `to` holds 'churned';
- outcome 0: the customer is present at t + horizon with any other value (for a churn-only target,
  present with any value, even NULL);
- unlabelled and excluded from the frame: for a target without 'churned', a customer absent from
  the t + horizon snapshot (or present with a NULL product). They left, so whether they would have
  moved is unknown; counting them as negatives would mix churn into the model and bias its rate.

Label target: the 0/1 `column` read `horizon` snapshots later (0 = the same row); a customer absent
then, or a NULL label, is unlabelled and excluded. Eligibility = the population filters at t.

Rows whose outcome snapshot (t + horizon) is not in the CAR are kept with target NULL, never 0. The
CAR's latest snapshot is the scoring population: all its eligible rows are kept whatever their
outcome (a label target's labels are usually not known there yet), with target NULL where unknown.
Training, validation and test read only rows with a known target.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from factory_assets.core.prep.sql import (
    SNAPSHOT,
    PrepError,
    is_numeric,
    kind_of,
    literal,
    literal_list,
    month_index,
    quote,
)
from factory_assets.core.specs import CHURNED, LabelTarget, ModelSpec, MovementTarget, PopulationFilter


class TargetError(PrepError):
    """The spec's target cannot be computed on this market's CAR."""


@dataclass(frozen=True)
class TargetPlan:
    """SQL pieces of a target: `eligible` reads the row at t as `c`; `outcome` reads `o`.

    `case` turns `_observable` (the t + horizon snapshot exists), `_present` (the customer is in it)
    and `_ov` (the `outcome` value) into the target; NULL with `_observable` true means excluded.
    """

    eligible: str
    outcome: str
    case: str
    horizon: int
    own_column: str
    is_label: bool = False


_OPS = {"==": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def _as_number(value: object, where: str) -> float:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return 1.0 if value.lower() == "true" else 0.0
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TargetError(f"{where}: value {value!r} is not a number but the column is numeric") from None


def _typed_values(values: list[object], kind: str, where: str) -> list[object]:
    if is_numeric(kind):  # type: ignore[arg-type]
        return [_as_number(v, where) for v in values]
    return [str(v) for v in values]


def _column_kind(columns: dict[str, str], column: str, where: str) -> str:
    if column not in columns:
        raise TargetError(f"{where}: column '{column}' does not exist in the CAR (has {sorted(columns)})")
    kind = kind_of(columns[column])
    if kind == "unsupported":
        raise TargetError(f"{where}: column '{column}' has unsupported type {columns[column]}")
    return kind


def match_sql(expr: str, kind: str, values: list[object], where: str) -> str:
    """`expr IN (values)` comparing numbers for numeric columns and strings otherwise."""
    typed = _typed_values(values, kind, where)
    cast = "double" if is_numeric(kind) else "varchar"  # type: ignore[arg-type]
    return f"(cast({expr} as {cast}) in {literal_list(typed)})"


_ORDERING = (">", ">=", "<", "<=")


def _refuse_number_against_text(rule: PopulationFilter, kind: str, column_type: str, where: str) -> None:
    """A number ordered against a text column would compare as text ('10' < '3'): refuse it.

    Equality with a number on a text column stays allowed (a code such as '3' is matched as text).
    """
    is_number = isinstance(rule.value, int | float) and not isinstance(rule.value, bool)
    if rule.op in _ORDERING and is_number and not is_numeric(kind):  # type: ignore[arg-type]
        raise TargetError(
            f"{where}: '{rule.column} {rule.op} {rule.value!r}' compares a number "
            f"({type(rule.value).__name__}) with a text column ({column_type}); text is ordered "
            "character by character, so the filter would not mean what it says: compare the column "
            "with a text value, use 'in', or filter on a numeric column"
        )


def filter_sql(rule: PopulationFilter, columns: dict[str, str], cell: str) -> str:
    """One population filter as a boolean SQL expression on the row at t (`c`)."""
    where = f"{cell}: population filter on '{rule.column}'"
    kind = _column_kind(columns, rule.column, where)
    column = f"c.{quote(rule.column)}"
    if rule.op in ("in", "not in"):
        values = rule.value if isinstance(rule.value, list) else [rule.value]
        test = match_sql(column, kind, list(values), where)
        return test if rule.op == "in" else f"(not {test})"
    if isinstance(rule.value, list):
        raise TargetError(f"{where}: operator '{rule.op}' needs one value, got a list")
    _refuse_number_against_text(rule, kind, columns[rule.column], where)
    value = _typed_values([rule.value], kind, where)[0]
    cast = "double" if is_numeric(kind) else "varchar"  # type: ignore[arg-type]
    return f"(cast({column} as {cast}) {_OPS[rule.op]} {literal(value)})"


def _eligibility(spec: ModelSpec, columns: dict[str, str], cell: str, extra: list[str]) -> str:
    parts = extra + [filter_sql(rule, columns, cell) for rule in spec.population]
    return " and ".join(f"coalesce({p}, false)" for p in parts) or "true"


def _movement(spec: ModelSpec, target: MovementTarget, columns: dict[str, str], cell: str) -> TargetPlan:
    where = f"{cell}: target.product"
    kind = _column_kind(columns, target.product, where)
    product = quote(target.product)
    from_test = match_sql(f"c.{product}", kind, list(target.from_), f"{cell}: target.from")
    to_values = [v for v in target.to if v != CHURNED]
    to_test = match_sql("_ov", kind, list(to_values), f"{cell}: target.to") if to_values else "false"
    absent = "1" if CHURNED in target.to else "null"
    present_null = "null" if to_values else "0"
    case = (
        f"case when not _observable then null when not _present then {absent} "
        f"when _ov is null then {present_null} when {to_test} then 1 else 0 end"
    )
    eligible = _eligibility(spec, columns, cell, [from_test])
    return TargetPlan(eligible, product, case, target.horizon, target.product)


def _label(spec: ModelSpec, target: LabelTarget, columns: dict[str, str], cell: str) -> TargetPlan:
    kind = _column_kind(columns, target.column, f"{cell}: target.column")
    if not is_numeric(kind):  # type: ignore[arg-type]
        raise TargetError(
            f"{cell}: label column '{target.column}' must hold 0/1 numbers, not {columns[target.column]}"
        )
    case = "case when not _observable or not _present or _ov is null then null else cast(_ov as integer) end"
    eligible = _eligibility(spec, columns, cell, [])
    return TargetPlan(eligible, quote(target.column), case, target.horizon, target.column, is_label=True)


def plan_target(spec: ModelSpec, columns: dict[str, str], cell: str) -> TargetPlan:
    """The target SQL of `spec` over a CAR with `columns`; raises `TargetError` naming the cell."""
    if isinstance(spec.target, MovementTarget):
        return _movement(spec, spec.target, columns, cell)
    return _label(spec, spec.target, columns, cell)


def snapshot_dates(con: duckdb.DuckDBPyConnection, car: str) -> list[dt.date]:
    """The CAR's distinct snapshot dates, ascending."""
    rows = con.execute(f"select distinct cast({SNAPSHOT} as date) from {car} order by 1").fetchall()
    return [row[0] for row in rows]


def check_target_data(con: duckdb.DuckDBPyConnection, car: str, plan: TargetPlan, cell: str) -> list[dt.date]:
    """Check that the CAR can carry the target; return its snapshot dates.

    Fails when the CAR is empty, holds two snapshots in one month (month arithmetic would be
    ambiguous), no snapshot has its outcome snapshot (horizon beyond the data), or a label column
    holds values other than 0/1.
    """
    dates = snapshot_dates(con, car)
    if not dates:
        raise TargetError(f"{cell}: the CAR {car} holds no snapshots")
    months = [month_index(d) for d in dates]
    if len(set(months)) != len(months):
        raise TargetError(f"{cell}: the CAR {car} holds two snapshots in one month: {dates}")
    if not any(m + plan.horizon in set(months) for m in months):
        raise TargetError(
            f"{cell}: horizon {plan.horizon} month(s) is beyond the data: no snapshot of {car} "
            f"({dates[0]} .. {dates[-1]}, {len(dates)} snapshots) has its outcome snapshot"
        )
    if plan.is_label:
        bad = con.execute(
            f"select distinct cast({plan.outcome} as varchar) from {car} "
            f"where {plan.outcome} is not null and cast({plan.outcome} as double) not in (0, 1) limit 5"
        ).fetchall()
        if bad:
            raise TargetError(f"{cell}: label column '{plan.own_column}' holds values other than 0/1: {bad}")
    return dates
