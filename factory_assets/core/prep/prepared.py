"""The read API of the prepared data: what training, drift and scoring load from the prep stage.

A cell's rows are keys in `prep.frames` / `prep.samples`; the features asked for are joined from
the market's CAR and history as they are read (`cell_data`), only those columns and, for a
population, only that snapshot. Frames come back in one convention: numeric features as float64
(NaN = missing), categorical features as Python strings with None for missing (object dtype),
`snapshot_date` as datetime64, `target` as int64 in samples and nullable Int64 in populations
(NULL = outcome not yet observable).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from factory_assets.core.names import Stage, Table, car_table
from factory_assets.core.prep.cell_data import (
    FrameColumn,
    cell_select,
    frames_label,
    has_rows,
    read_frame_columns,
    samples_label,
)
from factory_assets.core.prep.samples import sample_dates
from factory_assets.core.prep.sql import (
    CUSTOMER,
    READ_MEMORY_LIMIT,
    SNAPSHOT,
    TARGET,
    PrepError,
    bounded,
    kind_of,
)
from factory_assets.core.warehouse import Warehouse, column_types

KEYS = [CUSTOMER, SNAPSHOT]


@dataclass(frozen=True)
class ModelSamples:
    """A cell's sample: rows marked train / validation / test, the kept features and how it was drawn."""

    frame: pd.DataFrame
    """customer_id, snapshot_date, split, weight, target + feature columns."""
    features: list[str]
    """Kept features, in a stable order (the training frame's column order)."""
    categorical: list[str]
    """The subset of features that are categorical (strings; missing = None)."""
    beta: float
    """Kept fraction of negatives (1.0 = none dropped): p = beta*p_s / (beta*p_s - p_s + 1)."""
    test_snapshots: list[dt.date]
    first_snapshot: dt.date
    last_snapshot: dt.date
    cross_sectional: bool


def _require(warehouse: Warehouse, table: str, label: str, what: str, market: str, model: str) -> None:
    """Raise naming the cell when it holds no rows of `table` (the stage `what` has not run for it)."""
    if not warehouse.execute(lambda con: has_rows(con, table, market, model)):
        raise PrepError(f"{market}/{model}: {label} does not exist ({what} has not run for this cell)")


def _frame_columns(warehouse: Warehouse, market: str, model: str, names: list[str]) -> list[FrameColumn]:
    """The cell's frame columns `names` (in that order); raise naming the cell for one it lacks."""
    known = warehouse.execute(lambda con: read_frame_columns(con, market, model))
    missing = [n for n in names if n not in known]
    if missing:
        label = frames_label(market, model)
        raise PrepError(f"{market}/{model}: column(s) {missing} are not in the training frame {label}")
    return [known[n] for n in names]


def _types(columns: list[FrameColumn]) -> dict[str, str]:
    return {c.name: c.type for c in columns}


def conform(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Apply the module's dtype convention to `frame`, in place, converting only what differs."""
    for name in frame.columns:
        column = frame[name]
        if name in (CUSTOMER, "split") or kind_of(types.get(name, "")) == "string":
            frame[name] = column.astype(object).where(column.notna(), None)
        elif name not in (SNAPSHOT, TARGET, "_run_id", "_written_at") and column.dtype != np.float64:
            frame[name] = pd.to_numeric(column).astype(np.float64)
    return frame


def _column(values: pa.ChunkedArray) -> np.ndarray:
    """One Arrow column in the module's convention: strings as objects with None, numbers as float64."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return values.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return values.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_date(kind):
        return values.to_pandas(date_as_object=False).to_numpy().astype("datetime64[us]")
    return values.to_pandas().to_numpy()


def _read(warehouse: Warehouse, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    """A query result in pandas, DuckDB's own memory bounded by `READ_MEMORY_LIMIT`.

    The result travels as Arrow and each column is converted once into the convention (numbers
    as float64 with NaN, strings as objects with None; other types as pandas makes them), instead
    of DuckDB -> pandas -> convention, which cost several times the read on large populations.
    """

    def read(con: duckdb.DuckDBPyConnection) -> pa.Table:
        bounded(con, READ_MEMORY_LIMIT, keep_order=True)
        return con.sql(sql, params=params or None).to_arrow_table()

    table = warehouse.execute(read)
    # copy=False: the columns are fresh arrays; pandas' default copy would consolidate them (slow).
    return pd.DataFrame({name: _column(table[name]) for name in table.column_names}, copy=False)


def latest_snapshot(warehouse: Warehouse, market: str, model: str) -> dt.date:
    """The snapshot the cell scores: the latest snapshot of the market's CAR (`car.<market>`).

    Never the latest snapshot with known outcomes, nor the latest one the training frame happens to
    hold: when the cell has no eligible customer there, `load_population` fails instead of falling
    back to an older snapshot.
    """
    cell, car = f"{market}/{model}", car_table(market)
    _require(warehouse, Table.FRAMES, frames_label(market, model), Stage.TRAINING_FRAME, market, model)
    if not warehouse.execute(lambda con: column_types(con, car)):
        raise PrepError(f"{cell}: the CAR table {car} does not exist (car_snapshots has not run)")
    value = warehouse.query(f"select max({SNAPSHOT}) as d from {car}").iloc[0]["d"]
    if pd.isna(value):
        raise PrepError(f"{cell}: the CAR table {car} holds no snapshot")
    return pd.Timestamp(value).date()


def labelled_snapshots(warehouse: Warehouse, market: str, model: str) -> list[dt.date]:
    """Snapshots of the cell's training frame whose outcome is observed, ascending."""
    _require(warehouse, Table.FRAMES, frames_label(market, model), Stage.TRAINING_FRAME, market, model)
    frame = warehouse.query(
        f"select distinct {SNAPSHOT} as d from {Table.FRAMES} where market = ? and model = ? "
        f"and {TARGET} is not null order by 1",
        [market, model],
    )
    return [pd.Timestamp(d).date() for d in frame["d"]]


def previous_snapshot(warehouse: Warehouse, market: str, model: str, before: dt.date) -> dt.date | None:
    """The latest snapshot of the cell's training frame before `before`, None when there is none."""
    value = warehouse.query(
        f"select max({SNAPSHOT}) as d from {Table.FRAMES} where market = ? and model = ? and {SNAPSHOT} < ?",
        [market, model, before],
    ).iloc[0]["d"]
    return None if pd.isna(value) else pd.Timestamp(value).date()


def load_population(
    warehouse: Warehouse, market: str, model: str, columns: list[str], snapshot_date: dt.date | None = None
) -> pd.DataFrame:
    """Eligible customers of one snapshot: customer_id, snapshot_date, target (NULL = unknown) + columns.

    `snapshot_date` None reads the scoring population: every eligible customer of the latest
    snapshot of the market's CAR, whatever their outcome (`latest_snapshot`). Raises naming the cell
    when a requested column is not in the training frame, or the snapshot has no eligible row in
    it (for the latest snapshot: an empty scoring population, never replaced by an older one).
    Only `columns` are read, and only for that snapshot.
    """
    _require(warehouse, Table.FRAMES, frames_label(market, model), Stage.TRAINING_FRAME, market, model)
    wanted = [c for c in dict.fromkeys(columns) if c not in (*KEYS, TARGET)]
    frame_columns = _frame_columns(warehouse, market, model, wanted)
    day = snapshot_date or latest_snapshot(warehouse, market, model)
    sql = warehouse.execute(
        lambda con: cell_select(con, Table.FRAMES, [*KEYS, TARGET], frame_columns, market, day)
    )
    where = f"where k.market = ? and k.model = ? and k.{SNAPSHOT} = ? order by k.{CUSTOMER}"
    frame = _read(warehouse, f"{sql} {where}", [market, model, day])
    if frame.empty:
        raise _no_population(warehouse, market, model, day)
    frame[TARGET] = frame[TARGET].astype("Int64")
    return conform(frame, _types(frame_columns))


def _no_population(warehouse: Warehouse, market: str, model: str, day: dt.date) -> PrepError:
    """The error for a snapshot without eligible rows in the frame, naming what the frame holds."""
    cell, label = f"{market}/{model}", frames_label(market, model)
    days = warehouse.query(
        f"select min({SNAPSHOT}) as a, max({SNAPSHOT}) as b from {Table.FRAMES} "
        "where market = ? and model = ?",
        [market, model],
    ).iloc[0]
    held = f"{label} holds {days['a']} .. {days['b']}"
    if day != latest_snapshot(warehouse, market, model):
        return PrepError(f"{cell}: snapshot {day} is not in {label} ({held})")
    return PrepError(
        f"{cell}: no eligible customer to score in {day}, the latest snapshot of {car_table(market)} "
        f"({held}): no customer of that snapshot passes the model's population filters or target "
        "'from' values, or the training frame was built before that snapshot landed (rerun "
        "training_frame). An older snapshot is never scored instead."
    )


def load_model_samples(
    warehouse: Warehouse, market: str, model: str, splits: tuple[str, ...] | None = None
) -> ModelSamples:
    """The cell's sample with its features, beta and snapshots (as `model_samples` wrote them).

    `splits` reads only those splits' rows (the champion stage needs just the test split).
    """
    cell = f"{market}/{model}"
    _require(warehouse, Table.SAMPLES, samples_label(market, model), Stage.MODEL_SAMPLES, market, model)
    summary = warehouse.query(
        f"select * from {Table.SAMPLE_SUMMARY} where market = ? and model = ?", [market, model]
    )
    if summary.empty:
        raise PrepError(f"{cell}: no row in {Table.SAMPLE_SUMMARY} (model_samples has not run for this cell)")
    row = summary.iloc[0]
    features, categorical = json.loads(row["features"]), json.loads(row["categorical"])
    frame_columns = _frame_columns(warehouse, market, model, features)
    keys = [*KEYS, "split", "weight", TARGET]
    sql = warehouse.execute(lambda con: cell_select(con, Table.SAMPLES, keys, frame_columns, market))
    where, params = "where k.market = ? and k.model = ?", [market, model]
    if splits is not None:
        where += f" and k.split in ({', '.join('?' for _ in splits)})"
        params += list(splits)
    frame = _read(warehouse, f"{sql} {where} order by k.{SNAPSHOT}, k.{CUSTOMER}", params)
    frame[TARGET] = frame[TARGET].astype("int64")
    return ModelSamples(
        frame=conform(frame, _types(frame_columns)),
        features=features,
        categorical=categorical,
        beta=float(row["beta"]),
        test_snapshots=sample_dates(json.loads(row["test_snapshots"])),
        first_snapshot=pd.Timestamp(row["first_snapshot"]).date(),
        last_snapshot=pd.Timestamp(row["last_snapshot"]).date(),
        cross_sectional=bool(row["cross_sectional"]),
    )
