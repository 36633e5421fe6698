"""The factory status grid: one row per market x model, what the analyst opens first.

Each row gathers what the stages recorded for the cell: the market's latest Data Checker 1 result,
every stage's outcome, the champion (version, age, test AUC), drift, the last decision and its
reason, the release in force and its state (`release_state`: released, released under override,
held back, withdrawn) and whether it is stale (older than the spec's `max_release_age_days`: the
cell is then failing, "stale since <date>", whatever the reason). `health` sums it up
(`failing` > `attention` > `ok`) and rows are sorted worst first, so a hundred healthy cells do not
hide the one that needs a look. Tables that a stage has not written yet show as empty values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from itertools import product

import duckdb
import pandas as pd
from tabulate import tabulate

from factory_assets.core.names import CELL_STAGES, Stage, Table
from factory_assets.core.status import reads
from factory_assets.core.status.release_state import (
    DEFAULT_MAX_RELEASE_AGE_DAYS,
    release_problem,
    release_state,
    stale_since,
)
from factory_assets.core.warehouse import MarketWarehouses, Warehouse, transaction

HEALTH_ORDER = {"failing": 0, "attention": 1, "ok": 2}
DISPLAY_COLUMNS = {
    "market": "market",
    "model": "model",
    "health": "health",
    "dc1": "DC1",
    "stages": "stages ok",
    "champion": "champion",
    "champion_age_days": "age d",
    "test_auc": "AUC",
    "drift_share": "drift",
    "last_decision": "decision",
    "last_release_at": "released",
    "release_state": "release",
    "problem": "problem",
}


def _dc1_label(row: pd.Series) -> str:
    if pd.isna(row.get("dc1_snapshot")):
        return ""
    snapshot = pd.Timestamp(row["dc1_snapshot"]).date().isoformat()
    if isinstance(row["dc1_failed"], str):
        return f"FAIL {snapshot}: {row['dc1_failed']}"
    if isinstance(row["dc1_warned"], str):
        return f"warn {snapshot}: {row['dc1_warned']}"
    return f"pass {snapshot}"


def _merge(grid: pd.DataFrame, extra: pd.DataFrame | None, on: list[str], columns: list[str]) -> pd.DataFrame:
    if extra is None:
        return grid.assign(**{c: None for c in columns})
    return grid.merge(extra[[*on, *columns]], on=on, how="left")


def _problem(row: pd.Series) -> tuple[str, str]:
    if isinstance(row["dc1_failed"], str):
        return "failing", f"Data Checker 1 failed: {row['dc1_failed']}"
    held_back = bool(row["held_back"])
    if row["stage_problem"] and not (held_back and "held back" in row["stage_problem"]):
        return "failing", row["stage_problem"]
    release = release_problem(row)
    if release is not None:
        return release
    if isinstance(row["dc1_warned"], str):
        return "attention", f"Data Checker 1 warnings: {row['dc1_warned']}"
    not_run = [stage for stage in CELL_STAGES if not row[stage]]
    if not_run or not row[Stage.DATA_CHECKER_1]:
        return "attention", f"not run yet: {', '.join(not_run or ['data_checker_1'])}"
    return "ok", ""


def _verdict(row: pd.Series, max_age_days: int, now: dt.datetime) -> tuple[str, str]:
    """`_problem`, with a stale live release turning any verdict into failing: stale since <date>."""
    health, problem = _problem(row)
    since = stale_since(row, max_age_days, now)
    if since is None:
        return health, problem
    released = pd.Timestamp(row["last_release_at"]).date()
    stale = (
        f"stale since {since}: live release {row['last_release_id']} of {released} is older than "
        f"{max_age_days} days"
    )
    return "failing", f"{stale}; {problem}" if problem else stale


def build_status(
    warehouse: Warehouse,
    markets: list[str],
    models: list[str],
    now: dt.datetime,
    max_release_age_days: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The market x model grid, worst cells first (see the module docstring for the columns).

    `max_release_age_days` is each model's staleness limit (its spec's `score_checks`); a model not
    in it gets the `ScoreChecks` default.
    """
    limits = max_release_age_days or {}
    grid = pd.DataFrame(list(product(sorted(markets), sorted(models))), columns=["market", "model"])
    grid = reads.stage_columns(warehouse, grid)
    grid = _merge(grid, reads.dc1(warehouse), ["market"], ["dc1_snapshot", "dc1_failed", "dc1_warned"])
    decisions = reads.decisions(warehouse)
    grid = _merge(
        grid,
        decisions,
        ["market", "model"],
        ["champion_version", "last_decision", "last_decision_reason", "last_decision_at"],
    )
    versions = sorted(grid["champion_version"].dropna().unique().tolist())
    grid = _merge(
        grid,
        reads.champions(warehouse, versions, now),
        ["champion_version"],
        ["champion_age_days", "test_auc"],
    )
    grid = _merge(grid, reads.drift(warehouse), ["market", "model"], ["drift_share"])
    grid = _merge(grid, reads.releases(warehouse), ["market", "model"], reads.RELEASE_COLUMNS)
    grid = _merge(grid, reads.score_checks(warehouse), ["market", "model"], ["score_checks"])
    grid["held_back"] = grid["held_back"].fillna(False).astype(bool)
    grid["withdrawn"] = grid["withdrawn"].fillna(False).astype(bool)
    rows = [row for _, row in grid.iterrows()]
    grid["dc1"] = pd.Series([_dc1_label(row) for row in rows], index=grid.index, dtype="str")
    grid["release_state"] = pd.Series([release_state(row) for row in rows], index=grid.index, dtype="str")
    verdicts = [_verdict(row, limits.get(row["model"], DEFAULT_MAX_RELEASE_AGE_DAYS), now) for row in rows]
    grid["health"] = pd.Series([v[0] for v in verdicts], index=grid.index, dtype="str")
    grid["problem"] = pd.Series([v[1] for v in verdicts], index=grid.index, dtype="str")
    return worst_first(grid.drop(columns=["stage_problem"]))


def worst_first(grid: pd.DataFrame) -> pd.DataFrame:
    """The grid sorted failing, attention, ok, then by market and model (a stored grid has no order)."""
    order = grid["health"].map(HEALTH_ORDER)
    return (
        grid.assign(_order=order)
        .sort_values(["_order", "market", "model"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def store_status(warehouses: MarketWarehouses, grid: pd.DataFrame, run_id: str) -> int:
    """Replace the stored grid: each market's `ops.factory_status` holds its rows (plus lineage).

    One transaction per market file; a market with a file but no row in `grid` loses its stored
    rows. Read the whole grid back with `MarketWarehouses.union()`.
    """
    for market in sorted(set(warehouses.markets()) | set(grid["market"])):
        rows = grid[grid["market"] == market]

        def write(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame = rows) -> None:
            with transaction(con):
                if rows.empty:
                    con.execute(f"drop table if exists {Table.FACTORY_STATUS}")
                    return
                con.register("_grid", rows)
                con.execute("create schema if not exists ops")
                con.execute(
                    f"create or replace table {Table.FACTORY_STATUS} as select *, ? as _run_id, "
                    "current_timestamp::timestamp as _written_at from _grid",
                    [run_id],
                )

        warehouses.market(market).execute(write)
    return len(grid)


def _display_value(value: object, column: str) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if column == "champion":
        return str(value)[:10]
    if column == "champion_age_days":
        return str(int(value))
    if column in ("test_auc", "drift_share"):
        return f"{float(value):.3f}"
    if column in ("last_release_at", "last_decision_at"):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
    if column == "problem":
        return str(value)[:90]
    return value


def display_frame(grid: pd.DataFrame) -> pd.DataFrame:
    """The compact columns an analyst reads, formatted (shared by the CLI, Markdown and HTML views)."""
    frame = grid.rename(columns={"champion_version": "champion"})
    frame["stages"] = [f"{sum(row == 'ok')}/{len(CELL_STAGES)}" for row in grid[list(CELL_STAGES)].to_numpy()]
    blank = pd.Series([""] * len(frame), index=frame.index)  # a grid stored before the column existed
    shown = {
        column: [_display_value(v, column) for v in frame.get(column, blank)] for column in DISPLAY_COLUMNS
    }
    return pd.DataFrame(shown).rename(columns=DISPLAY_COLUMNS)


def format_status_table(frame: pd.DataFrame, tablefmt: str = "simple") -> str:
    """The grid as a text table (`simple` for the CLI, `github` for Markdown)."""
    if frame.empty:
        return "(no cells: no market has been ingested yet)"
    return tabulate(
        display_frame(worst_first(frame)),
        headers="keys",
        tablefmt=tablefmt,
        showindex=False,
        disable_numparse=True,
    )
