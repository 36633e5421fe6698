"""Warehouse reads and writes of the release stage: scores in, check results and release records out.

Reads (the minimal columns the release needs from upstream):
`scores.scores` (customer_id, snapshot_date, probability, percentile, decile, model_version and,
when the scoring stage records it, eligible_rows: the size of the population it scored);
`prep.tf__<market>__<model>` (a count of the eligible customers at the scored snapshot, used when
the scores do not carry eligible_rows); `registry.models` (model_version, metrics JSON with
test_base_rate, or base_rate). Writes: `ops.score_check_results` and `release.releases`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from factory_assets.core.names import Table, frame_table
from factory_assets.core.release.score_checks import RuleResult
from factory_assets.core.warehouse import Warehouse, column_types

RATE_KEYS = ("test_base_rate", "base_rate")
"""Keys of the champion's test metrics that hold the natural positive rate (the metrics are on the test)."""
SCORE_COLUMNS = ["customer_id", "snapshot_date", "probability", "percentile", "decile", "model_version"]


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The column names of `schema.table`, empty if it does not exist."""
    return set(column_types(con, table))


@dataclass(frozen=True)
class CellScores:
    """One cell's scores with the facts the gate needs about them."""

    frame: pd.DataFrame
    snapshot_date: dt.date | None
    model_version: str | None
    eligible_rows: int | None


@dataclass(frozen=True)
class GateFacts:
    """A cell's scores and what they are expected to look like, with where each expectation came from."""

    scores: CellScores
    expected_rows: int | None
    expected_rows_source: str
    expected_rate: float | None
    expected_rate_source: str


def _single(frame: pd.DataFrame, column: str, cell: str) -> object:
    values = frame[column].dropna().unique()
    if len(values) > 1:
        shown = ", ".join(str(v) for v in values[:5])
        raise ValueError(f"{Table.SCORES} for {cell} mixes {len(values)} values of {column}: {shown}")
    return values[0] if len(values) else None


def load_cell_scores(con: duckdb.DuckDBPyConnection, market: str, model: str) -> CellScores:
    """The cell's rows of `scores.scores`; one snapshot and one model version or a clear error."""
    available = table_columns(con, Table.SCORES)
    cell = f"{market}/{model}"
    if not available:
        raise ValueError(f"{Table.SCORES} does not exist: the scores stage has not written {cell}")
    missing = [c for c in SCORE_COLUMNS if c not in available and c != "percentile"]
    if missing:
        raise ValueError(f"{Table.SCORES} lacks column(s) {missing} needed to release {cell}")
    wanted = [c for c in SCORE_COLUMNS if c in available]
    extra = ", eligible_rows" if "eligible_rows" in available else ""
    frame = _query(
        con,
        f"select {', '.join(wanted)}{extra} from {Table.SCORES} where market = ? and model = ?",
        [market, model],
    )
    snapshot = _single(frame, "snapshot_date", cell)
    eligible = _single(frame, "eligible_rows", cell) if extra else None
    return CellScores(
        frame=frame.drop(columns=["eligible_rows"], errors="ignore"),
        snapshot_date=pd.Timestamp(snapshot).date() if snapshot is not None else None,
        model_version=_single(frame, "model_version", cell),
        eligible_rows=int(eligible) if eligible is not None else None,
    )


def expected_population(
    con: duckdb.DuckDBPyConnection, market: str, model: str, scores: CellScores
) -> tuple[int | None, str]:
    """The eligible population's size and its source: the scores' own record, else the training frame."""
    if scores.eligible_rows is not None:
        return scores.eligible_rows, f"{Table.SCORES}.eligible_rows"
    table = frame_table(market, model)
    if scores.snapshot_date is None or not table_columns(con, table):
        return None, f"neither {Table.SCORES}.eligible_rows nor {table} at the scored snapshot"
    sql = f"select count(*) as n from {table} where snapshot_date = ?"
    count = _query(con, sql, [scores.snapshot_date])
    return int(count.iloc[0]["n"]), f"{table} at {scores.snapshot_date}"


def _metrics(value: object) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(str(value)) if value is not None else {}


def expected_rate(con: duckdb.DuckDBPyConnection, model_version: str | None) -> tuple[float | None, str]:
    """The natural positive rate on the champion's out-of-time test (`metrics.test_base_rate`)."""
    if model_version is None:
        return None, "no model version on the scores"
    if not table_columns(con, Table.MODELS):
        return None, f"{Table.MODELS} does not exist"
    rows = _query(con, f"select metrics from {Table.MODELS} where model_version = ?", [model_version])
    if rows.empty:
        return None, f"{Table.MODELS} has no row for model version {model_version}"
    metrics = _metrics(rows.iloc[0]["metrics"])
    for key in RATE_KEYS:
        if metrics.get(key) is not None:
            return float(metrics[key]), f"{key} of {model_version[:12]}"
    return None, f"metrics of {model_version[:12]} hold none of {RATE_KEYS}"


def load_gate_facts(warehouse: Warehouse, market: str, model: str) -> GateFacts:
    """Everything the gate reads from the warehouse for one cell, over one short connection."""

    def read(con: duckdb.DuckDBPyConnection) -> GateFacts:
        scores = load_cell_scores(con, market, model)
        rows, rows_source = expected_population(con, market, model, scores)
        rate, rate_source = expected_rate(con, scores.model_version)
        return GateFacts(scores, rows, rows_source, rate, rate_source)

    return warehouse.execute(read)


def _dates(values: list[dt.date | None]) -> pd.Series:
    """Dates that stay a DATE column in DuckDB even when every value is missing."""
    return pd.Series(values, dtype=pd.ArrowDtype(pa.date32()))


def check_results_frame(
    results: list[RuleResult], market: str, model: str, scores: CellScores, evaluated_at: dt.datetime
) -> pd.DataFrame:
    """The rule results of one cell as rows of `ops.score_check_results`."""
    frame = pd.DataFrame(
        [asdict(r) for r in results], columns=["check", "passed", "value", "threshold", "detail"]
    )
    return frame.assign(
        market=market,
        model=model,
        snapshot_date=_dates([scores.snapshot_date] * len(frame)),
        model_version=scores.model_version,
        evaluated_at=evaluated_at,
    ).astype({"value": "Float64", "threshold": "Float64", "passed": "boolean", "model_version": "str"})


def store_check_results(
    warehouse: Warehouse, frame: pd.DataFrame, market: str, model: str, run_id: str
) -> None:
    """Replace the cell's Data Checker 2 results (all rules of the latest evaluation)."""
    warehouse.replace_partition(Table.SCORE_CHECK_RESULTS, frame, {"market": market, "model": model}, run_id)


@dataclass(frozen=True)
class ReleaseRecord:
    """One row of `release.releases`: a publication or a held-back attempt."""

    market: str
    model: str
    release_id: str
    released_at: dt.datetime
    status: str
    reason: str
    snapshot_date: dt.date | None
    model_version: str | None
    rows: int
    path: str | None
    sha256: str | None
    serving_release_id: str | None


def record_release(warehouse: Warehouse, record: ReleaseRecord, run_id: str) -> None:
    """Store the record, replacing an earlier one with the same release id (reruns add no duplicate)."""
    frame = pd.DataFrame([asdict(record)]).astype(
        {"rows": "int64", "path": "str", "sha256": "str", "model_version": "str", "serving_release_id": "str"}
    )
    frame["snapshot_date"] = _dates([record.snapshot_date])
    warehouse.replace_partition(Table.RELEASES, frame, {"release_id": record.release_id}, run_id)
