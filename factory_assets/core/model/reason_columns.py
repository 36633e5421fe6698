"""The names and types of the reason code columns (`core.model.reasons`), without the model libraries.

Slot k (1 = the largest absolute contribution) is `reason_<k>_feature`, `reason_<k>_value` and
`reason_<k>_contribution`. Kept apart from the computation so that the release store, the API's reader
and the warehouse reads name the columns without importing CatBoost or scikit-learn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KINDS = ("feature", "value", "contribution")
"""The columns of one reason slot, in file order."""
DUCKDB_TYPES = {"feature": "varchar", "value": "varchar", "contribution": "double"}
PANDAS_TYPES = {"feature": "string", "value": "string", "contribution": "float64"}
REASON_COLUMN = re.compile(r"^reason_([1-9][0-9]*)_(feature|value|contribution)$")


def reason_column(rank: int, kind: str) -> str:
    """The column of slot `rank` (1-based) holding `kind` (feature, value or contribution)."""
    return f"reason_{rank}_{kind}"


def reason_columns(top_n: int) -> list[str]:
    """Every reason column of `top_n` slots, in file order."""
    return [reason_column(rank, kind) for rank in range(1, top_n + 1) for kind in KINDS]


def reason_column_types(top_n: int) -> dict[str, str]:
    """The DuckDB type of every reason column of `top_n` slots."""
    return {reason_column(rank, kind): DUCKDB_TYPES[kind] for rank in range(1, top_n + 1) for kind in KINDS}


def reason_columns_in(names: Iterable[str]) -> list[str]:
    """The reason columns among `names`, in file order (slot, then feature, value, contribution)."""
    found = [(m, name) for name in names if (m := REASON_COLUMN.match(name))]
    found.sort(key=lambda item: (int(item[0].group(1)), KINDS.index(item[0].group(2))))
    return [name for _, name in found]


def _parts(column: str) -> tuple[int, str]:
    match = REASON_COLUMN.match(column)
    if match is None:
        raise ValueError(f"'{column}' is not a reason column (reason_<k>_feature|value|contribution)")
    return int(match.group(1)), match.group(2)


def reason_slot(column: str) -> int:
    """The slot (1-based rank) of a reason column; ValueError for any other column."""
    return _parts(column)[0]


def reason_dtype(column: str) -> str:
    """The pandas dtype of a reason column: text for the feature and value, float64 for the contribution."""
    return PANDAS_TYPES[_parts(column)[1]]
