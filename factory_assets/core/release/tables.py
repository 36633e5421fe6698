"""Warehouse reads and writes of the release stage: scores in, check results and release records out.

Reads (the minimal columns the release needs from upstream):
`scores.scores` (customer_id, snapshot_date, probability, percentile, decile, model_version and,
when the scoring stage records it, eligible_rows: the size of the population it scored, and the
reason code columns of a spec that opts in);
`prep.frames` (the cell's rows: a count of the eligible customers at the scored snapshot, used
when the scores do not carry eligible_rows); the expected rate (`core.release.expected_rate`: the
recent realised rate or the champion's test rate, with the champion's mean there); `car.<market>`
(the latest ingested snapshot).
Writes: `ops.score_check_results` and `release.releases`, the release ledger: every publication,
held-back attempt, release under override and withdrawal, with who, when and why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from factory_assets.core.model.reason_columns import reason_columns_in
from factory_assets.core.names import Table, car_table, partition_label
from factory_assets.core.release.expected_rate import expected_rate
from factory_assets.core.release.score_checks import RuleResult
from factory_assets.core.warehouse import Warehouse, column_types

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
class MarketSnapshots:
    """The market's latest ingested snapshot and how many ingested snapshots are newer than the scored one."""

    latest: dt.date | None
    newer_than_scored: int | None
    source: str


@dataclass(frozen=True)
class GateFacts:
    """A cell's scores and what they are expected to look like, with where each expectation came from."""

    scores: CellScores
    expected_rows: int | None
    expected_rows_source: str
    expected_rate: float | None
    expected_rate_source: str
    snapshots: MarketSnapshots
    expected_rate_mean: float | None = None
    """The champion's mean probability on the labelled population of `expected_rate` (None: unknown)."""


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
    wanted = [c for c in SCORE_COLUMNS if c in available] + reason_columns_in(available)
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
    table = partition_label(Table.FRAMES, market=market, model=model)
    if scores.snapshot_date is None or not table_columns(con, Table.FRAMES):
        return None, f"neither {Table.SCORES}.eligible_rows nor {table} at the scored snapshot"
    sql = f"select count(*) as n from {Table.FRAMES} where market = ? and model = ? and snapshot_date = ?"
    count = _query(con, sql, [market, model, scores.snapshot_date])
    return int(count.iloc[0]["n"]), f"{table} at {scores.snapshot_date}"


def market_snapshots(con: duckdb.DuckDBPyConnection, market: str, scored: dt.date | None) -> MarketSnapshots:
    """The latest snapshot of `car.<market>` and the count of its snapshots after `scored`."""
    table = car_table(market)
    if not table_columns(con, table):
        return MarketSnapshots(None, None, f"{table} does not exist")
    latest, newer = con.execute(
        f"select max(snapshot_date), count(distinct snapshot_date) filter (where snapshot_date > ?) "
        f"from {table}",
        [scored],
    ).fetchone()
    if latest is None:
        return MarketSnapshots(None, None, f"{table} is empty")
    return MarketSnapshots(pd.Timestamp(latest).date(), int(newer) if scored else None, table)


def load_gate_facts(warehouse: Warehouse, market: str, model: str) -> GateFacts:
    """Everything the gate reads from the warehouse for one cell, over one short connection."""

    def read(con: duckdb.DuckDBPyConnection) -> GateFacts:
        scores = load_cell_scores(con, market, model)
        rows, rows_source = expected_population(con, market, model, scores)
        rate = expected_rate(con, market, model, scores.model_version)
        snapshots = market_snapshots(con, market, scores.snapshot_date)
        return GateFacts(scores, rows, rows_source, rate.rate, rate.source, snapshots, rate.champion_mean)

    return warehouse.execute(read)


def _dates(values: list[dt.date | None]) -> pd.Series:
    """Dates that stay a DATE column in DuckDB even when every value is missing."""
    return pd.Series(values, dtype=pd.ArrowDtype(pa.date32()))


def check_results_frame(
    results: list[RuleResult], market: str, model: str, scores: CellScores, evaluated_at: dt.datetime
) -> pd.DataFrame:
    """The rule results of one cell as rows of `ops.score_check_results`."""
    frame = pd.DataFrame(
        [asdict(r) for r in results], columns=["check", "passed", "value", "threshold", "detail", "reference"]
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
    add_missing_columns(warehouse, Table.SCORE_CHECK_RESULTS, {"reference": "varchar"})
    warehouse.replace_partition(Table.SCORE_CHECK_RESULTS, frame, {"market": market, "model": model}, run_id)


RELEASED = "released"
HELD_BACK = "held_back"
RELEASED_UNDER_OVERRIDE = "released_under_override"
WITHDRAWN = "withdrawn"
PUBLISHED = (RELEASED, RELEASED_UNDER_OVERRIDE)
"""Ledger statuses that put a release in force."""
LEDGER_ADDED_COLUMNS = dict.fromkeys(
    ("operator", "overridden_checks", "withdrawn_release_id", "restatement"), "varchar"
)
"""Columns the ledger gained with operator actions and restatements; added to a ledger written before
them (their values there read as none)."""


def add_missing_columns(warehouse: Warehouse, table: str, columns: dict[str, str]) -> None:
    """Add `columns` (name -> DuckDB type) that an existing `table` lacks; nothing if it does not exist."""

    def alter(con: duckdb.DuckDBPyConnection) -> None:
        present = table_columns(con, table)
        for name, kind in columns.items():
            if present and name not in present:
                con.execute(f"alter table {table} add column {name} {kind}")

    warehouse.execute(alter)


@dataclass(frozen=True)
class ReleaseRecord:
    """One row of `release.releases`: a publication, a held-back attempt, an override or a withdrawal.

    `serving_release_id` is the release in force after the event. Operator actions name the
    `operator`; a release under override keeps the failed rule results it overrode
    (`overridden_checks`, JSON); a withdrawal names the `withdrawn_release_id`. A release of a
    snapshot whose version in the CAR is an accepted restatement names it (`restatement`: the file,
    its content hash and its verdict record in `ops.car_snapshot_verdicts`).
    """

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
    operator: str | None = None
    overridden_checks: str | None = None
    withdrawn_release_id: str | None = None
    restatement: str | None = None


def record_release(warehouse: Warehouse, record: ReleaseRecord, run_id: str) -> None:
    """Store the record, replacing an earlier one with the same release id (reruns add no duplicate)."""
    text_columns = ["path", "sha256", "model_version", "serving_release_id", *LEDGER_ADDED_COLUMNS]
    frame = pd.DataFrame([asdict(record)]).astype({"rows": "int64", **dict.fromkeys(text_columns, "str")})
    frame["snapshot_date"] = _dates([record.snapshot_date])
    add_missing_columns(warehouse, Table.RELEASES, LEDGER_ADDED_COLUMNS)
    warehouse.replace_partition(Table.RELEASES, frame, {"release_id": record.release_id}, run_id)


def ledger(warehouse: Warehouse, market: str, model: str) -> pd.DataFrame:
    """The cell's release ledger, oldest entry first (empty before the first release attempt)."""
    if not warehouse.table_exists(Table.RELEASES):
        return pd.DataFrame()
    add_missing_columns(warehouse, Table.RELEASES, LEDGER_ADDED_COLUMNS)
    return warehouse.query(
        f"select * from {Table.RELEASES} where market = ? and model = ? order by _written_at, released_at",
        [market, model],
    )


def ledger_entry(entries: pd.DataFrame, release_id: str) -> dict[str, object] | None:
    """The ledger row of `release_id` among `entries`, or None."""
    if entries.empty:
        return None
    rows = entries[entries["release_id"] == release_id]
    return None if rows.empty else rows.iloc[-1].to_dict()


def withdrawal_of(entries: pd.DataFrame, release_id: str) -> dict[str, object] | None:
    """The withdrawal of `release_id` still in effect (not followed by a new publication of it), or None."""
    if entries.empty:
        return None
    own = entries[(entries["withdrawn_release_id"] == release_id) | (entries["release_id"] == release_id)]
    if own.empty or own.iloc[-1]["status"] != WITHDRAWN:
        return None
    return own.iloc[-1].to_dict()


def record_from_entry(entry: dict[str, object]) -> ReleaseRecord:
    """A ledger row back as a `ReleaseRecord` (to write it again, unchanged but for its lineage)."""

    def text(key: str) -> str | None:
        value = entry.get(key)
        return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)

    snapshot = entry.get("snapshot_date")
    return ReleaseRecord(
        market=str(entry["market"]),
        model=str(entry["model"]),
        release_id=str(entry["release_id"]),
        released_at=pd.Timestamp(entry["released_at"]).to_pydatetime(),
        status=str(entry["status"]),
        reason=str(entry["reason"]),
        snapshot_date=None if snapshot is None or pd.isna(snapshot) else pd.Timestamp(snapshot).date(),
        model_version=text("model_version"),
        rows=int(entry["rows"]),
        path=text("path"),
        sha256=text("sha256"),
        serving_release_id=text("serving_release_id"),
        operator=text("operator"),
        overridden_checks=text("overridden_checks"),
        withdrawn_release_id=text("withdrawn_release_id"),
        restatement=text("restatement"),
    )
