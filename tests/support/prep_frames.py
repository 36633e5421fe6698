"""Read a cell's prepared data whole, as the per-cell tables of the old layout held it (tests only)."""

from __future__ import annotations

import duckdb
import pandas as pd

from factory_assets.core.names import Table
from factory_assets.core.prep.cell_data import (
    FRAMES_COLUMNS,
    FrameColumn,
    cell_select,
    read_frame_columns,
    replace_cell_rows,
    write_frame_columns,
)
from factory_assets.core.warehouse import Warehouse, transaction


def cell_frame(warehouse: Warehouse, market: str, model: str) -> pd.DataFrame:
    """Every row of the cell's training frame with every candidate column, by customer and snapshot."""

    def read(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
        columns = list(read_frame_columns(con, market, model).values())
        sql = cell_select(con, Table.FRAMES, ["customer_id", "snapshot_date", "target"], columns, market)
        where = "where k.market = ? and k.model = ? order by k.customer_id, k.snapshot_date"
        return con.execute(f"{sql} {where}", [market, model]).df()

    return warehouse.execute(read)


def cell_rows(warehouse: Warehouse, table: str, market: str, model: str) -> int:
    """The cell's rows in a partitioned prep table (0 when the table does not exist)."""
    if not warehouse.table_exists(table):
        return 0
    found = warehouse.query(
        f"select count(*) as n from {table} where market = ? and model = ?", [market, model]
    )
    return int(found.iloc[0]["n"])


def prep_tables(warehouse: Warehouse) -> set[str]:
    """The tables of the `prep` schema."""
    rows = warehouse.query("select table_name from duckdb_tables() where schema_name = 'prep'")
    return {f"prep.{name}" for name in rows["table_name"]}


SHARED_PREP_TABLES = {
    Table.HISTORY,
    Table.HISTORY_SNAPSHOTS,
    Table.HISTORY_FEATURES,
    Table.FRAMES,
    Table.FRAME_COLUMNS,
    Table.VARIABLE_DECISIONS,
    Table.SAMPLES,
    Table.SAMPLE_SUMMARY,
    Table.SAMPLE_RATES,
}
"""Every table the preparation writes, whatever the number of markets and models."""


def write_cell_frame(warehouse: Warehouse, market: str, model: str, frame: pd.DataFrame, run_id: str) -> None:
    """Store a training-frame-like table as the preparation does: its features in `car.<market>`, its
    keys and target in `prep.frames` and its columns in `prep.frame_columns` (no history features)."""
    features = [c for c in frame.columns if c not in ("customer_id", "snapshot_date", "target")]
    for snapshot, part in frame.groupby("snapshot_date"):
        car = part.drop(columns="target")
        warehouse.replace_partition(f"car.{market}", car, {"snapshot_date": snapshot}, run_id)
    keys = frame[["customer_id", "snapshot_date", "target"]].astype({"target": "Int64"})
    columns = [
        FrameColumn(c, "car", "float" if pd.api.types.is_numeric_dtype(frame[c]) else "string")
        for c in features
    ]

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.register("_keys", keys)
        with transaction(con):
            replace_cell_rows(con, Table.FRAMES, FRAMES_COLUMNS, market, model, "select * from _keys", run_id)
            write_frame_columns(con, market, model, columns, run_id)
        con.unregister("_keys")

    warehouse.execute(write)
