"""Landing files of the demo CAR: where a snapshot goes and how it is written atomically."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FileFormat = Literal["parquet", "csv"]
DATE_COLUMN = "snapshot_date"


def snapshot_path(landing_dir: Path, market: str, snapshot: dt.date, file_format: FileFormat) -> Path:
    """`<landing>/<market>/car_<YYYY-MM-DD>.<parquet|csv>`, the name the landing sensor expects."""
    return Path(landing_dir) / market / f"car_{snapshot.isoformat()}.{file_format}"


def _temp_name(path: Path) -> Path:
    # Hidden and without a CAR suffix, so a folder watcher never picks up a file being written.
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """An Arrow table of the frame with `snapshot_date` stored as a calendar date (date32)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if DATE_COLUMN in table.column_names and pa.types.is_timestamp(table.schema.field(DATE_COLUMN).type):
        index = table.column_names.index(DATE_COLUMN)
        table = table.set_column(index, DATE_COLUMN, table.column(DATE_COLUMN).cast(pa.date32()))
    return table


def write_bytes_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temp_path)`, then rename the temporary file onto `path` (atomic on one volume)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_snapshot(frame: pd.DataFrame, path: Path) -> Path:
    """Write one snapshot as Parquet or CSV (UTF-8, ISO dates) by the suffix of `path`, atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        table = frame_to_table(frame)
        return write_bytes_atomically(path, lambda temp: pq.write_table(table, temp))
    if path.suffix == ".csv":
        return write_bytes_atomically(
            path,
            lambda temp: frame.to_csv(temp, index=False, encoding="utf-8", date_format="%Y-%m-%d"),
        )
    raise ValueError(f"cannot write CAR snapshot {path}: the suffix must be .parquet or .csv")
