"""A cell's prepared data: keys stored per cell, features joined where they live, at read time.

A cell stores only keys, in partitions (market, model) of shared tables: `prep.frames` (customer_id,
snapshot_date, target: NULL where the outcome is not known yet) and `prep.samples` (the same keys
with split and weight). Its features are read where they are kept once per market: base columns
from `car.<market>` (cast as `features.base_expression` casts them), history features from
`prep.history`, joined on (customer_id, snapshot_date). `prep.frame_columns` records each candidate
column of the cell in frame order: where it comes from, its kind and, for a grouped categorical
column, the levels kept as themselves (the others read as 'other'), so training and scoring read
the same levels.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb

from factory_assets.core.names import Table, car_table, partition_label
from factory_assets.core.prep.cleaning import OTHER
from factory_assets.core.prep.features import Candidate, base_expression
from factory_assets.core.prep.sql import (
    CUSTOMER,
    SNAPSHOT,
    TARGET,
    literal,
    literal_list,
    quote,
    table_columns,
)

_LINEAGE = "_run_id varchar, _written_at timestamp"
_CELL = f"market varchar, model varchar, {CUSTOMER} varchar, {SNAPSHOT} date"
FRAMES_COLUMNS = f"{_CELL}, {TARGET} integer, {_LINEAGE}"
SAMPLES_COLUMNS = f"{_CELL}, split varchar, weight double, {TARGET} integer, {_LINEAGE}"
_FRAME_COLUMNS_COLUMNS = (
    f"market varchar, model varchar, position integer, variable varchar, origin varchar, kind varchar, "
    f"levels varchar, {_LINEAGE}"
)
_NOW = "current_timestamp::timestamp"


def frames_label(market: str, model: str) -> str:
    """The cell's partition of `prep.frames`, as messages and the UI name it."""
    return partition_label(Table.FRAMES, market=market, model=model)


def samples_label(market: str, model: str) -> str:
    """The cell's partition of `prep.samples`, as messages and the UI name it."""
    return partition_label(Table.SAMPLES, market=market, model=model)


@dataclass(frozen=True)
class FrameColumn:
    """A candidate column of a cell's frame: its origin (`car` or `history`), kind and grouped levels."""

    name: str
    origin: str
    kind: str
    levels: tuple[str, ...] | None = None
    """Grouped categorical column: the levels kept as themselves; any other level reads as 'other'."""

    @property
    def type(self) -> str:
        """The DuckDB type the column reads as (strings VARCHAR, numbers numeric)."""
        return "VARCHAR" if self.kind == "string" else "DOUBLE"


def frame_columns(candidates: list[Candidate], groups: dict[str, list[str]]) -> list[FrameColumn]:
    """The cell's frame columns from its candidates (frame order) and the cleaning's grouped levels."""
    return [
        FrameColumn(
            c.name,
            "history" if c.derived else "car",
            c.kind,
            tuple(groups[c.name]) if c.name in groups else None,
        )
        for c in candidates
    ]


def write_frame_columns(
    con: duckdb.DuckDBPyConnection, market: str, model: str, columns: list[FrameColumn], run_id: str
) -> None:
    """Replace the cell's rows of `prep.frame_columns` (inside the caller's transaction)."""
    con.execute(f"create table if not exists {Table.FRAME_COLUMNS} ({_FRAME_COLUMNS_COLUMNS})")
    con.execute(f"delete from {Table.FRAME_COLUMNS} where market = ? and model = ?", [market, model])
    rows = [
        [
            market,
            model,
            i,
            c.name,
            c.origin,
            c.kind,
            None if c.levels is None else json.dumps(list(c.levels)),
            run_id,
        ]
        for i, c in enumerate(columns)
    ]
    if rows:
        con.executemany(f"insert into {Table.FRAME_COLUMNS} values (?, ?, ?, ?, ?, ?, ?, ?, {_NOW})", rows)


def read_frame_columns(con: duckdb.DuckDBPyConnection, market: str, model: str) -> dict[str, FrameColumn]:
    """The cell's frame columns by name, in frame order; empty when the frame was never built."""
    if not table_columns(con, Table.FRAME_COLUMNS):
        return {}
    rows = con.execute(
        f"select variable, origin, kind, levels from {Table.FRAME_COLUMNS} where market = ? and model = ? "
        "order by position",
        [market, model],
    ).fetchall()
    return {
        name: FrameColumn(name, origin, kind, None if levels is None else tuple(json.loads(levels)))
        for name, origin, kind, levels in rows
    }


def has_rows(con: duckdb.DuckDBPyConnection, table: str, market: str, model: str) -> bool:
    """True when the cell holds at least one row of `table` (a partitioned table of keys)."""
    if not table_columns(con, table):
        return False
    found = con.execute(
        f"select count(*) from (select 1 from {table} where market = ? and model = ? limit 1)",
        [market, model],
    ).fetchone()
    return bool(found and found[0])


def replace_cell_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    market: str,
    model: str,
    select_sql: str,
    run_id: str,
) -> None:
    """Replace the cell's partition of `table` (created with `columns`) by the rows of `select_sql`.

    Inside the caller's transaction: the rows of `select_sql` are inserted by name with the cell's
    market, model and the lineage columns.
    """
    con.execute(f"create schema if not exists {table.partition('.')[0]}")
    con.execute(f"create table if not exists {table} ({columns})")
    con.execute(f"delete from {table} where market = ? and model = ?", [market, model])
    con.execute(
        f"insert into {table} by name select ? as market, ? as model, *, ? as _run_id, {_NOW} as _written_at "
        f"from ({select_sql})",
        [market, model, run_id],
    )


def _expression(column: FrameColumn, car_types: dict[str, str]) -> str:
    """The read expression of a frame column (grouped levels mapped to 'other'), aliased to its name."""
    if column.origin == "history":
        return f"h.{quote(column.name)} as {quote(column.name)}"
    value = base_expression(Candidate(column.name, column.kind, column.name), car_types, "c")  # type: ignore[arg-type]
    if column.levels is not None:
        kept = f"when {value} in {literal_list(column.levels)} then {value} " if column.levels else ""
        value = f"case when {value} is null then null {kept}else {literal(OTHER)} end"
    return f"{value} as {quote(column.name)}"


def cell_select(
    con: duckdb.DuckDBPyConnection,
    keys: str,
    key_columns: list[str],
    columns: list[FrameColumn],
    market: str,
    snapshot: dt.date | None = None,
) -> str:
    """SELECT `key_columns` of `keys` (alias `k`) and `columns`, joined from the CAR and the history.

    `keys` is a table or a parenthesised query with customer_id and snapshot_date (the caller adds
    its WHERE on `k`); `snapshot` restricts the joined tables to one snapshot, so a population read
    touches only that snapshot of the CAR and of the history.
    """
    car = car_table(market)
    on_day = "" if snapshot is None else f"and {{alias}}.{SNAPSHOT} = date {literal(snapshot.isoformat())}"
    joins, exprs = [], {}
    if any(c.origin == "car" for c in columns):
        types = table_columns(con, car)
        exprs.update({c.name: _expression(c, types) for c in columns if c.origin == "car"})
        joins.append(
            f"join {car} c on cast(c.{CUSTOMER} as varchar) = k.{CUSTOMER} "
            f"and cast(c.{SNAPSHOT} as date) = k.{SNAPSHOT} {on_day.format(alias='c')}"
        )
    if any(c.origin == "history" for c in columns):
        exprs.update({c.name: _expression(c, {}) for c in columns if c.origin == "history"})
        joins.append(
            f"left join {Table.HISTORY} h on h.market = {literal(market)} and h.{CUSTOMER} = k.{CUSTOMER} "
            f"and h.{SNAPSHOT} = k.{SNAPSHOT} {on_day.format(alias='h')}"
        )
    select = [*(f"k.{quote(c)}" for c in key_columns), *(exprs[c.name] for c in columns)]
    return f"select {', '.join(select)} from {keys} k {' '.join(joins)}"
