"""A delivered snapshot staged for Data Checker 1: checked beside the market's CAR, not yet part of it.

The checks read a temporary view: the snapshots of `car.<market>` before the staged one, and the
staged rows in its place (`UNION ALL BY NAME`, so a column new in the delivery is NULL before it).
A snapshot becomes part of `car.<market>` only after its own verdict (`core/car/admit.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pandas as pd

from factory_assets.core.names import car_table
from factory_assets.core.warehouse import LINEAGE_COLUMNS, column_types

CHECKED_VIEW = "main._checked_car"
"""The temporary view the checks read while a snapshot is staged (temp catalog, this connection only)."""
_STAGED_ROWS = "_staged_rows"


@dataclass(frozen=True)
class StagedSnapshot:
    """A delivered snapshot that met the contract and can be stored unchanged, awaiting its verdict."""

    frame: pd.DataFrame
    snapshot_date: dt.date
    source: str
    content_hash: str


@contextmanager
def staged_view(con: duckdb.DuckDBPyConnection, market: str, staged: StagedSnapshot | None) -> Iterator[str]:
    """The table the checks read: `car.<market>`, or with `staged` the view of it up to the staged rows."""
    if staged is None:
        yield car_table(market)
        return
    con.register(_STAGED_ROWS, staged.frame)
    source = f"select * from {_STAGED_ROWS}"
    if column_types(con, car_table(market)):
        before = f"date '{staged.snapshot_date.isoformat()}'"
        source = (
            f"select * from {car_table(market)} where snapshot_date < {before} union all by name {source}"
        )
    con.execute(f"create or replace temp view {CHECKED_VIEW.split('.')[1]} as {source}")
    try:
        yield CHECKED_VIEW
    finally:
        con.execute(f"drop view if exists temp.{CHECKED_VIEW}")
        con.unregister(_STAGED_ROWS)


def replaced_version(con: duckdb.DuckDBPyConnection, market: str, day: dt.date) -> pd.DataFrame | None:
    """The rows of `day` held in `car.<market>` (the version a re-delivery replaces), or None."""
    table = car_table(market)
    if not column_types(con, table):
        return None
    exclude = ", ".join(LINEAGE_COLUMNS)
    frame = con.execute(f"select * exclude ({exclude}) from {table} where snapshot_date = ?", [day]).df()
    return None if frame.empty else frame
