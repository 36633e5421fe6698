"""Aggregates of `car.<market>` computed inside DuckDB, for Data Checker 1.

Every function scans only the columns and snapshots it needs and returns small aggregates (counts
per snapshot, per column, per level or per bin), so a market of a million customers x 24 months is
checked in seconds without loading its history into pandas.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import numpy as np
import pandas as pd

from factory_assets.core.warehouse import Warehouse

NUMERIC_TYPE = re.compile(
    r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|REAL|DECIMAL(\(.*\))?)$", re.I
)
"""Scalar numeric DuckDB types (a list such as INTEGER[] or a struct is not numeric: it is 'other')."""
TEXT_TYPES = ("VARCHAR", "BOOLEAN")
NULL_BIN = "__null__"


class Reader(Protocol):
    """Anything that runs a read query: a `Warehouse`, or one open connection (`ConnectionReader`)."""

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run `sql` with `params` and return the rows."""
        ...


class ConnectionReader:
    """Reads on one open connection, so that the checks' dozen queries share one short connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run `sql` with `params` and return the rows."""
        return self._con.execute(sql, params or []).df()


def table_exists(db: Reader, table: str) -> bool:
    """True if `schema.table` exists."""
    schema, _, name = table.partition(".")
    sql = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
    return bool(db.query(sql, [schema, name]).iloc[0, 0])


def query_if_exists(
    warehouse: Warehouse, table: str, sql: str, params: list[Any] | None = None
) -> pd.DataFrame | None:
    """Run `sql` if `table` exists, both on one short connection; None if the table does not exist."""
    with warehouse.connect() as con:
        db = ConnectionReader(con)
        return db.query(sql, params) if table_exists(db, table) else None


def quote(name: str) -> str:
    """A SQL identifier in double quotes (CAR columns come from files, not from us)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class CarColumns:
    """The checkable columns of a market table, by kind (keys and lineage columns excluded)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    other: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Every checkable column (numeric, categorical, other)."""
        return self.numeric + self.categorical + self.other

    def without(self, names: frozenset[str]) -> CarColumns:
        """The same split without `names` (e.g. label columns, checked apart from the features)."""
        kinds = (self.numeric, self.categorical, self.other)
        return CarColumns(*(tuple(c for c in kind if c not in names) for kind in kinds))


def table_columns(db: Reader, table: str, skip: set[str]) -> CarColumns:
    """Split the table's columns (minus `skip`) into numeric, categorical and other."""
    schema, _, name = table.partition(".")
    rows = db.query(
        "select column_name, data_type from information_schema.columns where table_schema = ? "
        "and table_name = ? order by ordinal_position",
        [schema, name],
    )
    numeric, categorical, other = [], [], []
    for column, dtype in zip(rows["column_name"], rows["data_type"], strict=True):
        if column in skip:
            continue
        if NUMERIC_TYPE.match(str(dtype).upper()):
            numeric.append(column)
        elif str(dtype).upper() in TEXT_TYPES:
            categorical.append(column)
        else:
            other.append(column)
    return CarColumns(tuple(numeric), tuple(categorical), tuple(other))


def snapshot_rows(db: Reader, table: str) -> dict[dt.date, int]:
    """Rows per snapshot date, oldest first."""
    rows = db.query(f"select snapshot_date, count(*) as n from {table} group by 1 order by 1")
    return {pd.Timestamp(d).date(): int(n) for d, n in zip(rows["snapshot_date"], rows["n"], strict=True)}


def customer_overlap(db: Reader, table: str, customer_key: str, previous: dt.date, latest: dt.date) -> int:
    """Customers present in both snapshots."""
    key = quote(customer_key)
    sql = (
        f"select count(*) from (select {key} from {table} where snapshot_date = ?) p "
        f"join (select {key} from {table} where snapshot_date = ?) l using ({key})"
    )
    return int(db.query(sql, [previous, latest]).iloc[0, 0])


def non_null_counts(db: Reader, table: str, columns: tuple[str, ...], dates: list[dt.date]) -> pd.DataFrame:
    """Non-null count and approximate distinct count per column (rows) and snapshot (columns)."""
    if not columns:
        return pd.DataFrame()
    counts = ", ".join(f"count({quote(c)}) as {quote('n:' + c)}" for c in columns)
    distinct = ", ".join(f"approx_count_distinct({quote(c)}) as {quote('d:' + c)}" for c in columns)
    placeholders = ", ".join("?" for _ in dates)
    raw = db.query(
        f"select snapshot_date, {counts}, {distinct} from {table} "
        f"where snapshot_date in ({placeholders}) group by 1",
        list(dates),
    )
    raw["snapshot_date"] = [pd.Timestamp(d).date() for d in raw["snapshot_date"]]
    return raw.set_index("snapshot_date").T


def level_counts(
    db: Reader, table: str, columns: tuple[str, ...], dates: list[dt.date]
) -> dict[str, dict[dt.date, dict[str, int]]]:
    """Rows per non-null level, per categorical column and snapshot (one scan, UNPIVOT)."""
    if not columns:
        return {}
    as_text = ", ".join(f"{quote(c)}::VARCHAR as {quote(c)}" for c in columns)
    names = ", ".join(quote(c) for c in columns)
    placeholders = ", ".join("?" for _ in dates)
    rows = db.query(
        f"select snapshot_date, col, val, count(*) as n from (unpivot (select snapshot_date, {as_text} "
        f"from {table} where snapshot_date in ({placeholders})) on {names} into name col value val) "
        "group by all",
        list(dates),
    )
    result: dict[str, dict[dt.date, dict[str, int]]] = {c: {d: {} for d in dates} for c in columns}
    for day, column, value, n in rows.itertuples(index=False):
        result[column][pd.Timestamp(day).date()][str(value)] = int(n)
    return result


def quantile_edges(
    db: Reader, table: str, columns: tuple[str, ...], day: dt.date, bins: int
) -> dict[str, list[float]]:
    """Distinct inner quantile edges of each numeric column in one snapshot (the PSI reference)."""
    if not columns:
        return {}
    probabilities = [round(i / bins, 6) for i in range(1, bins)]
    select = ", ".join(f"quantile_cont({quote(c)}, {probabilities}) as {quote(c)}" for c in columns)
    row = db.query(f"select {select} from {table} where snapshot_date = ?", [day]).iloc[0]
    edges = {}
    for column in columns:
        finite = [float(v) for v in _quantiles(row[column]) if not pd.isna(v) and math.isfinite(v)]
        edges[column] = sorted(set(finite))
    return edges


def _quantiles(value: object) -> list[Any]:
    """The list DuckDB returned for a column's quantiles; empty when the column is null throughout.

    pandas hands an all-null column's quantiles back as None, NaN or pd.NA depending on the type.
    """
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    if value is None or pd.isna(value):
        return []
    raise TypeError(f"unexpected quantiles {value!r} ({type(value).__name__}) from DuckDB")


def _not_a_label(column: str) -> str:
    """SQL: the value is known but not 0/1 (text '1', booleans and decimals count as 0/1)."""
    name = quote(column)
    return f"({name} is not null and coalesce(try_cast({name} as double) not in (0, 1), true))"


def label_counts(db: Reader, table: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Known (`k:<col>`) and non-0/1 (`x:<col>`) values per label column (rows) and snapshot (columns)."""
    if not columns:
        return pd.DataFrame()
    known = ", ".join(f"count({quote(c)}) as {quote('k:' + c)}" for c in columns)
    bad = ", ".join(f"count(*) filter (where {_not_a_label(c)}) as {quote('x:' + c)}" for c in columns)
    raw = db.query(f"select snapshot_date, {known}, {bad} from {table} group by 1 order by 1")
    raw["snapshot_date"] = [pd.Timestamp(d).date() for d in raw["snapshot_date"]]
    return raw.set_index("snapshot_date").T


def non_label_values(db: Reader, table: str, column: str, limit: int = 5) -> list[str]:
    """A few distinct known values of a label column that are not 0/1, as text."""
    rows = db.query(
        f"select distinct cast({quote(column)} as varchar) as v from {table} where {_not_a_label(column)} "
        f"order by 1 limit {int(limit)}"
    )
    return [str(v) for v in rows["v"]]


def _bin_case(column: str, edges: list[float]) -> str:
    name = quote(column)
    parts = [f"when {name} is null then -1"]
    parts += [f"when {name} <= {edge!r} then {i}" for i, edge in enumerate(edges)]
    return f"case {' '.join(parts)} else {len(edges)} end"


def bin_counts(
    db: Reader, table: str, edges: Mapping[str, list[float]], dates: list[dt.date]
) -> dict[str, dict[dt.date, dict[str, int]]]:
    """Rows per bin (and a null bin) for each numeric column and snapshot, in one scan.

    Each value becomes a small integer bin (-1 for null) and GROUPING SETS count every column's
    bins in one pass: about three times faster than filtered counts or an UNPIVOT at 1M rows.
    """
    if not edges:
        return {}
    columns = list(edges)
    cases = ", ".join(f"{_bin_case(c, edges[c])} as b{i}" for i, c in enumerate(columns))
    bins = ", ".join(f"b{i}" for i in range(len(columns)))
    sets = ", ".join(f"(snapshot_date, b{i})" for i in range(len(columns)))
    placeholders = ", ".join("?" for _ in dates)
    rows = db.query(
        f"select snapshot_date, {bins}, count(*) as n from (select snapshot_date, {cases} from {table} "
        f"where snapshot_date in ({placeholders})) group by grouping sets ({sets})",
        list(dates),
    )
    result: dict[str, dict[dt.date, dict[str, int]]] = {c: {d: {} for d in dates} for c in columns}
    for day, *values, n in rows.itertuples(index=False):
        position = next(i for i, v in enumerate(values) if not pd.isna(v))
        label = NULL_BIN if values[position] == -1 else f"b{int(values[position]):03d}"
        result[columns[position]][pd.Timestamp(day).date()][label] = int(n)
    return result


def psi(expected: Mapping[str, int], actual: Mapping[str, int], floor: float = 1e-4) -> float:
    """Population stability index of `actual` vs `expected` counts; empty shares are floored."""
    total_e, total_a = sum(expected.values()), sum(actual.values())
    if total_e == 0 or total_a == 0:
        return 0.0
    value = 0.0
    for level in set(expected) | set(actual):
        e = max(expected.get(level, 0) / total_e, floor)
        a = max(actual.get(level, 0) / total_a, floor)
        value += (a - e) * math.log(a / e)
    return value
