"""What the status grid reads from each stage's tables; a table not written yet reads as None."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from factory_assets.core.cell_status import MARKET_WIDE
from factory_assets.core.names import CELL_STAGES, Stage, Table
from factory_assets.core.warehouse import Warehouse, column_types


def _read(warehouse: Warehouse, table: str, sql: str) -> pd.DataFrame | None:
    return warehouse.query(sql) if warehouse.table_exists(table) else None


def stage_columns(warehouse: Warehouse, grid: pd.DataFrame) -> pd.DataFrame:
    """Each cell's outcome per stage ('' = never ran) and its first failed or skipped stage."""
    rows = _read(
        warehouse, Table.CELL_STATUS, f"select market, model, stage, status, message from {Table.CELL_STATUS}"
    )
    grid = grid.assign(data_checker_1="", **{stage: "" for stage in CELL_STAGES}, stage_problem="")
    if rows is None:
        return grid
    by_key = {(r.market, r.model, r.stage): (r.status, r.message) for r in rows.itertuples()}
    for index, cell in grid.iterrows():
        dc1 = by_key.get((cell.market, MARKET_WIDE, Stage.DATA_CHECKER_1))
        grid.at[index, Stage.DATA_CHECKER_1] = dc1[0] if dc1 else ""
        for stage in CELL_STAGES:
            status, message = by_key.get((cell.market, cell.model, stage), ("", ""))
            grid.at[index, stage] = status
            if status in ("failed", "skipped") and not grid.at[index, "stage_problem"]:
                grid.at[index, "stage_problem"] = f"{stage} {status}: {message}"
    return grid


def dc1(warehouse: Warehouse) -> pd.DataFrame | None:
    """Per market, its latest snapshot's Data Checker 1 blocking failures and warnings."""
    sql = f"""
        with latest as (
            select market, max(snapshot_date) as snapshot_date from {Table.CAR_CHECK_RESULTS} group by market
        )
        select market, max(snapshot_date)::date as dc1_snapshot,
            string_agg("check", ', ' order by "check") filter (not passed and severity = 'blocking')
                as dc1_failed,
            string_agg("check", ', ' order by "check") filter (not passed and severity <> 'blocking')
                as dc1_warned
        from {Table.CAR_CHECK_RESULTS} join latest using (market, snapshot_date)
        group by market"""
    return _read(warehouse, Table.CAR_CHECK_RESULTS, sql)


def decisions(warehouse: Warehouse) -> pd.DataFrame | None:
    """Per cell, the latest champion decision (its live version is the champion)."""
    sql = f"""
        select market, model, decided_at as last_decision_at, outcome as last_decision,
               reason as last_decision_reason, live_version as champion_version
        from {Table.DECISIONS}
        qualify row_number() over (partition by market, model order by decided_at desc) = 1"""
    return _read(warehouse, Table.DECISIONS, sql)


def _metric(metrics: object, name: str) -> float | None:
    if metrics is None or (isinstance(metrics, float) and pd.isna(metrics)):
        return None
    values = metrics if isinstance(metrics, dict) else json.loads(str(metrics))
    value = values.get(name)
    return float(value) if value is not None else None


def champions(warehouse: Warehouse, versions: list[str], now: dt.datetime) -> pd.DataFrame | None:
    """Age in days (since training) and test AUC of the given model versions."""
    if not versions or not warehouse.table_exists(Table.MODELS):
        return None
    rows = warehouse.query(
        f"select model_version as champion_version, trained_at, metrics from {Table.MODELS} "
        "where model_version in (select unnest(?))",
        [versions],
    )
    trained = pd.to_datetime(rows["trained_at"])
    return pd.DataFrame(
        {
            "champion_version": rows["champion_version"],
            "champion_age_days": (pd.Timestamp(now) - trained).dt.days.astype("Int64"),
            "test_auc": [_metric(m, "auc") for m in rows["metrics"]],
        }
    ).drop_duplicates("champion_version")


def drift(warehouse: Warehouse) -> pd.DataFrame | None:
    """Per cell, the drift share of the latest drift record."""
    sql = "select market, model, arg_max(drift_share, _written_at) as drift_share "
    sql += f"from {Table.DRIFT} group by all"
    return _read(warehouse, Table.DRIFT, sql)


RELEASE_COLUMNS = [
    "last_release_id",
    "last_release_at",
    "last_release_status",
    "last_release_operator",
    "last_release_reason",
    "overridden_checks",
    "held_back",
    "held_back_reason",
    "withdrawn",
    "withdrawal",
]
"""What `releases` gives per cell: the live release (its publication, and any override), whether the
latest attempt was held back, and whether a withdrawal still stands."""


def _optional(columns: set[str], name: str) -> str:
    """A ledger column that older ledgers lack (read as NULL there)."""
    return name if name in columns else f"null::varchar as {name}"


def releases(warehouse: Warehouse) -> pd.DataFrame | None:
    """Per cell, the release in force, whether the latest attempt was held back, and any withdrawal.

    The live release is the latest entry itself when it published, else the release the latest entry
    left in force (`serving_release_id`). A withdrawal stands until the live release is published or
    confirmed again after it.
    """
    if not warehouse.table_exists(Table.RELEASES):
        return None
    columns = set(warehouse.execute(lambda con: column_types(con, Table.RELEASES)))
    operator, overridden = _optional(columns, "operator"), _optional(columns, "overridden_checks")
    withdrawn_id = _optional(columns, "withdrawn_release_id")
    published = "('released', 'released_under_override')"
    sql = f"""
        with entries as (
            select market, model, release_id, released_at, status, reason, serving_release_id,
                   _written_at, {operator}, {overridden}, {withdrawn_id},
                   row_number() over (partition by market, model order by _written_at desc, released_at desc)
                       as newest
            from {Table.RELEASES}),
        latest as (
            select market, model, status as latest_status, reason as latest_reason,
                   case when status in {published} then release_id else serving_release_id end as live_id
            from entries where newest = 1),
        publications as (
            select market, model, release_id, max(_written_at) as published_written_at,
                   arg_max(released_at, _written_at) as live_at, arg_max(status, _written_at) as live_status,
                   arg_max(operator, _written_at) as live_operator,
                   arg_max(reason, _written_at) as live_reason,
                   arg_max(overridden_checks, _written_at) as live_overridden
            from entries where status in {published} group by all),
        withdrawals as (
            select market, model, max(_written_at) as withdrawn_written_at,
                   arg_max(withdrawn_release_id || ' by ' || coalesce(operator, '?') || ' at '
                       || strftime(released_at, '%Y-%m-%d %H:%M') || ': ' || reason, _written_at)
                       as withdrawal
            from entries where status = 'withdrawn' group by all)
        select l.market, l.model, l.live_id as last_release_id, p.live_at as last_release_at,
               p.live_status as last_release_status, p.live_operator as last_release_operator,
               p.live_reason as last_release_reason, p.live_overridden as overridden_checks,
               l.latest_status = 'held_back' as held_back,
               case when l.latest_status = 'held_back' then l.latest_reason end as held_back_reason,
               coalesce(w.withdrawn_written_at > coalesce(p.published_written_at, '-infinity'::timestamp),
                        false) as withdrawn,
               w.withdrawal
        from latest l
        left join publications p on p.market = l.market and p.model = l.model and p.release_id = l.live_id
        left join withdrawals w on w.market = l.market and w.model = l.model"""
    return warehouse.query(sql)


def score_checks(warehouse: Warehouse) -> pd.DataFrame | None:
    """Per cell, the Data Checker 2 rules that failed on the latest evaluation ('pass' if none)."""
    sql = f"""
        select market, model,
            coalesce(string_agg("check", ', ' order by "check") filter (not passed), 'pass') as score_checks
        from {Table.SCORE_CHECK_RESULTS} group by market, model"""
    return _read(warehouse, Table.SCORE_CHECK_RESULTS, sql)
