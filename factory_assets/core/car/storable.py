"""Values a delivered snapshot holds that `car.<market>` cannot store without changing them.

Such a file is rejected, naming the file, the column and a few rows, instead of being stored
altered: column names that differ only in case (DuckDB names are case-insensitive, the second
would be stored renamed), columns without a header (a trailing delimiter), infinite numbers, and
values that the column's stored type would change (fractions into an integer column, text into a
number column).
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from factory_assets.core.car.profile import quote
from factory_assets.core.contract import ContractError
from factory_assets.core.warehouse import LINEAGE_COLUMNS, Warehouse, column_types

NO_HEADER = re.compile(r"^(Unnamed: \d+|\s*)$")
"""pandas' name for a CSV column without a header (`Unnamed: 33`), or an empty name."""
NULL_TYPE = '"NULL"'
EXAMPLES = 3


def name_problems(frame: pd.DataFrame) -> list[str]:
    """Columns without a header, and columns whose names differ only in case."""
    problems = []
    for name in frame.columns:
        if NO_HEADER.match(str(name)):
            filled = int(frame[name].notna().sum())
            problems.append(
                f"column '{name}' has no header ({filled} non-empty value(s)): a trailing delimiter on "
                "each line, or an unnamed column; remove it from the file"
            )
    by_lower: dict[str, list[str]] = {}
    for name in map(str, frame.columns):
        by_lower.setdefault(name.lower(), []).append(name)
    for names in by_lower.values():
        if len(names) > 1:
            problems.append(
                f"columns {names} differ only in case: the warehouse's names are case-insensitive, "
                "so one would be stored under another name; rename or drop one"
            )
    return problems


def _examples(frame: pd.DataFrame, key: str, mask: np.ndarray, column: str) -> str:
    rows = frame.loc[mask, [key, column]].head(EXAMPLES)
    return ", ".join(f"{key} {k!s}: {v!r}" for k, v in rows.itertuples(index=False))


def infinite_problems(frame: pd.DataFrame, key: str) -> list[str]:
    """Numeric columns holding +inf or -inf, with a few rows."""
    problems = []
    for column in frame.columns:
        if column == key or not pd.api.types.is_float_dtype(frame[column]):
            continue
        values = frame[column].to_numpy(dtype="float64", na_value=np.nan)
        mask = np.isinf(values)
        if mask.any():
            problems.append(
                f"column '{column}': {int(mask.sum())} infinite value(s), "
                f"e.g. {_examples(frame, key, mask, column)}"
            )
    return problems


def _lossy_sql(stored: dict[str, str], incoming: dict[str, str]) -> dict[str, str]:
    """Per shared column: SQL true where the stored type would change (or drop) the delivered value."""
    skip = {"snapshot_date", *LINEAGE_COLUMNS}
    tests = {}
    for column, source in incoming.items():
        target = stored.get(column)
        if column in skip or target is None or target in (NULL_TYPE, "NULL") or target == source:
            continue
        name = quote(column)
        back = f"try_cast(try_cast({name} as {target}) as {source})"
        tests[column] = f"({name} is not null and {back} is distinct from {name})"
    return tests


def lossy_problems(warehouse: Warehouse, table: str, frame: pd.DataFrame, key: str) -> list[str]:
    """Columns whose delivered values the type stored in `table` would change, with a few rows."""

    def count(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int, list[tuple[object, object]]]]:
        stored = column_types(con, table)
        if not stored:
            return {}
        con.register("_delivered", frame)
        try:
            incoming = {c: str(t) for c, t, *_ in con.execute("describe select * from _delivered").fetchall()}
            found = {}
            for column, test in _lossy_sql(stored, incoming).items():
                rows = con.execute(
                    f"select {quote(key)}, {quote(column)} from _delivered where {test}"
                ).fetchall()
                if rows:
                    found[column] = (f"{incoming[column]} -> {stored[column]}", len(rows), rows[:EXAMPLES])
            return found
        finally:
            con.unregister("_delivered")

    return [
        f"column '{column}': {n} value(s) would change when stored as {table}'s type ({types}), "
        f"e.g. {', '.join(f'{key} {k}: {v!r}' for k, v in examples)}"
        for column, (types, n, examples) in warehouse.execute(count).items()
    ]


def check_storable(warehouse: Warehouse, table: str, frame: pd.DataFrame, source: str, key: str) -> None:
    """Raise `ContractError` naming `source`, the columns and a few rows if a value cannot be stored as is."""
    problems = [*infinite_problems(frame, key), *lossy_problems(warehouse, table, frame, key)]
    if problems:
        raise ContractError(f"{source}: values that cannot be stored without change: {'; '.join(problems)}")
