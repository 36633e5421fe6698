"""SQL building blocks shared by the preparation stage: quoting, column kinds, month arithmetic.

CAR column names come from files, so every identifier is quoted and every literal escaped; table
names go through `check_identifier`. Months are counted as `year * 12 + month - 1` (`_mi`), so a
window "k months back" is a difference of month numbers, never a count of rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Literal

import duckdb
import pandas as pd

from factory_assets.core.warehouse import column_types

CUSTOMER = "customer_id"
SNAPSHOT = "snapshot_date"
TARGET = "target"
NON_FEATURES = frozenset({CUSTOMER, SNAPSHOT, TARGET, "_source_file", "_run_id", "_written_at"})
"""Columns of the CAR or the frame that are never candidate features."""

MONTH_INDEX = f"(year({SNAPSHOT}) * 12 + month({SNAPSHOT}) - 1)"
"""SQL month number of a snapshot: consecutive months differ by exactly 1."""

BUILD_MEMORY_LIMIT = "3GB"
"""DuckDB memory while the stage builds a table; beyond it DuckDB spills to disk, so peak RSS is bounded at
any market size (3GB: about 3.3 GB peak at 300k x 24; 2GB gave 2.3 GB at 1M x 24; docs/benchmarks.md)."""
READ_MEMORY_LIMIT = "1GB"
"""DuckDB memory while a frame is read into pandas (the pandas frame itself comes on top)."""

Kind = Literal["integer", "float", "string", "null", "unsupported"]
_INTEGER = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$|^BOOLEAN$")
_FLOAT = re.compile(r"^(FLOAT|DOUBLE|REAL)$|^DECIMAL")


class PrepError(ValueError):
    """Preparation cannot go on for a cell; the message names the cell, the column and the cause."""


def bounded(
    con: duckdb.DuckDBPyConnection, memory_limit: str | None, keep_order: bool = False
) -> duckdb.DuckDBPyConnection:
    """Session settings for heavy work: a memory limit, no needless row order, no progress bar.

    `memory_limit` None keeps DuckDB's default (80% of RAM); giving up insertion order saves memory.
    `keep_order` keeps it for reads exported to Arrow: without it DuckDB 2.0.0 drops their ORDER BY.
    """
    con.execute(f"set preserve_insertion_order = {'true' if keep_order else 'false'}")
    con.execute("set enable_progress_bar = false")
    if memory_limit:
        con.execute(f"set memory_limit = {literal(memory_limit)}")
    return con


def quote(name: str) -> str:
    """A double-quoted SQL identifier (CAR column names are data, not code)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for a number or a string; anything else is refused."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot use {value!r} ({type(value).__name__}) as a SQL literal")


def literal_list(values: Iterable[object]) -> str:
    """A parenthesised list of literals for `IN`; an empty list becomes `(NULL)` (matches nothing)."""
    items = [literal(v) for v in values]
    return "(" + ", ".join(items) + ")" if items else "(NULL)"


def kind_of(duckdb_type: str) -> Kind:
    """How the preparation treats a DuckDB column type."""
    upper = duckdb_type.upper()
    if _INTEGER.match(upper):
        return "integer"
    if _FLOAT.match(upper):
        return "float"
    if upper == "VARCHAR" or upper.startswith("ENUM"):
        return "string"
    if upper in ('"NULL"', "NULL"):
        return "null"
    return "unsupported"


def is_numeric(kind: Kind) -> bool:
    """True for kinds aggregated as numbers (an all-NULL column counts as numeric)."""
    return kind in ("integer", "float", "null")


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of `schema.table`, in table order; empty if it does not exist."""
    return column_types(con, table)


def month_index(date: dt.date | pd.Timestamp) -> int:
    """The Python twin of `MONTH_INDEX`."""
    return date.year * 12 + date.month - 1
