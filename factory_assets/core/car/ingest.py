"""Ingest a market's CAR snapshots into `car.<market>`: new or changed ones only, validated first.

Each snapshot is one atomic replace of its `snapshot_date` rows. A snapshot that breaks the
contract (or cannot be read) is not written, so the previous good data stays; it is returned as a
`Rejection` naming the file and the rules, for Data Checker 1's contract check. Every attempt is
recorded in `ops.car_files` with the file's content hash and the contract's hash, so an unchanged
file under an unchanged contract is skipped on the next run (re-ingest is idempotent either way).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow

from factory_assets.core.car.inputs import (
    Rejection,
    SnapshotInput,
    collect_inputs,
    external_inputs,
    landing_inputs,
)
from factory_assets.core.car.profile import query_if_exists, quote
from factory_assets.core.car.source import CarReadError
from factory_assets.core.car.storable import name_problems
from factory_assets.core.contract import CarContract, ContractError, validate_car
from factory_assets.core.names import Table, car_table
from factory_assets.core.warehouse import Warehouse, column_types

__all__ = [
    "SOURCE_COLUMN",
    "IngestReport",
    "Rejection",
    "SnapshotInput",
    "collect_inputs",
    "external_inputs",
    "ingest_market",
    "landing_inputs",
    "market_summary",
    "prepare_snapshot",
    "write_snapshot",
]
SOURCE_COLUMN = "_source_file"
MAX_FAILURE_CASES = 20


@dataclass(frozen=True)
class IngestReport:
    """What one ingest of a market did."""

    market: str
    ingested: dict[dt.date, int] = field(default_factory=dict)
    unchanged: list[dt.date] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def contract_hash(contract: CarContract) -> str:
    """Hash of the contract: a changed contract re-validates every snapshot."""
    return hashlib.sha256(contract.model_dump_json().encode("utf-8")).hexdigest()


def failure_cases(exc: Exception) -> list[dict[str, str]]:
    """A few pandera failure cases behind a `ContractError` (none for other errors)."""
    cause = exc.__cause__
    if not isinstance(cause, pa.errors.SchemaErrors):
        return []
    cases = cause.failure_cases.head(MAX_FAILURE_CASES)
    columns = [c for c in ("column", "check", "failure_case", "index") if c in cases.columns]
    return [{c: str(row[c]) for c in columns} for _, row in cases.iterrows()]


def prepare_snapshot(
    frame: pd.DataFrame, contract: CarContract, item: SnapshotInput, today: dt.date | None = None
) -> pd.DataFrame:
    """Refuse unnamed or case-clashing columns, validate, check the dates match, add `_source_file`."""
    problems = name_problems(frame)
    if problems:
        raise ContractError(f"{item.source}: {'; '.join(problems)}")
    validated = validate_car(frame.reset_index(drop=True), contract, item.source, today)
    dates = sorted(pd.Timestamp(d).date() for d in validated[contract.date_key].dt.normalize().unique())
    if dates != [item.snapshot_date]:
        shown = ", ".join(str(d) for d in dates[:3])
        raise ContractError(
            f"{item.source}: column '{contract.date_key}' holds {shown}"
            f"{' ...' if len(dates) > 3 else ''} but the file is for snapshot {item.snapshot_date}"
            f"{timezone_hint(frame[contract.date_key])}"
        )
    validated[contract.date_key] = validated[contract.date_key].astype(pd.ArrowDtype(pyarrow.date32()))
    validated[SOURCE_COLUMN] = item.source
    return validated


UTC_OFFSET = re.compile(r"(?:[+-]\d{2}:?\d{2}|Z)$")


def timezone_hint(raw: pd.Series) -> str:
    """Why a date moved: delivered times with a time zone are converted to UTC before the day is taken."""
    zone = getattr(raw.dtype, "tz", None) or getattr(getattr(raw.dtype, "pyarrow_dtype", None), "tz", None)
    examples = raw.dropna().astype(str).head(50)
    offset = examples[examples.str.contains(UTC_OFFSET)]
    if zone is None and offset.empty:
        return ""
    shown = f"time zone {zone}" if zone is not None else f"a UTC offset, e.g. '{offset.iloc[0]}'"
    return (
        f" (the delivered values carry {shown}: they are converted to UTC before the day is taken, "
        "which moves a local midnight to the day before; deliver plain dates or times in UTC)"
    )


NULL_TYPE = '"NULL"'
"""DuckDB's type of a column that was null throughout the frame that created it (it holds no value)."""


def align_columns(warehouse: Warehouse, table: str, frame: pd.DataFrame) -> list[str]:
    """Make `table` take the frame: add its new columns, type the ones that were null until now.

    A column null throughout the first snapshot (an all-null Parquet column) is stored with the
    type "NULL", which no later value fits; the first snapshot that holds values gives it its type
    (every stored value is NULL, so the change loses nothing). Returns the columns added or typed.
    """

    def alter(con: duckdb.DuckDBPyConnection) -> list[str]:
        existing = column_types(con, table)
        if not existing:
            return []
        con.register("_incoming_types", frame)
        types = con.execute("describe select * from _incoming_types").fetchall()
        con.unregister("_incoming_types")
        changed = []
        for column, dtype, *_ in types:
            if column not in existing:
                con.execute(f"alter table {table} add column {quote(column)} {dtype}")
            elif existing[column] == NULL_TYPE and dtype != NULL_TYPE:
                con.execute(f"alter table {table} alter column {quote(column)} set data type {dtype}")
            else:
                continue
            changed.append(column)
        return changed

    return warehouse.execute(alter)


def write_snapshot(
    warehouse: Warehouse, market: str, frame: pd.DataFrame, snapshot_date: dt.date, run_id: str
) -> int:
    """Atomically replace one snapshot of `car.<market>`; its new or so far null columns are typed first."""
    table = car_table(market)
    align_columns(warehouse, table, frame)
    return warehouse.replace_partition(table, frame, {"snapshot_date": snapshot_date}, run_id)


def read_ledger(warehouse: Warehouse, market: str) -> dict[dt.date, tuple[str, str, str]]:
    """The market's `ops.car_files` rows: snapshot date -> (status, content hash, contract hash)."""
    sql = f"select snapshot_date, status, content_hash, contract_hash from {Table.CAR_FILES} where market = ?"
    rows = query_if_exists(warehouse, Table.CAR_FILES, sql, [market])
    if rows is None:
        return {}
    return {
        pd.Timestamp(r.snapshot_date).date(): (r.status, r.content_hash, r.contract_hash)
        for r in rows.itertuples()
    }


def _record(
    warehouse: Warehouse,
    item: SnapshotInput,
    hashes: tuple[str, str],
    outcome: tuple[str, str, int],
    run_id: str,
) -> None:
    status, reason, rows = outcome
    frame = pd.DataFrame(
        [
            {
                "market": item.market,
                "snapshot_date": item.snapshot_date,
                "source_file": item.source,
                "content_hash": hashes[0],
                "contract_hash": hashes[1],
                "status": status,
                "reason": reason,
                "rows": rows,
            }
        ]
    )
    partition = {"market": item.market, "snapshot_date": item.snapshot_date}
    warehouse.replace_partition(Table.CAR_FILES, frame, partition, run_id)


def _ingest_one(
    warehouse: Warehouse, item: SnapshotInput, contract: CarContract, run_id: str, today: dt.date | None
) -> int:
    frame = prepare_snapshot(item.load(), contract, item, today)
    try:
        return write_snapshot(warehouse, item.market, frame, item.snapshot_date, run_id)
    except duckdb.ConversionException as exc:
        raise ContractError(
            f"{item.source}: a column's values do not fit the type stored in {car_table(item.market)}: {exc}"
        ) from exc


def ingest_market(
    warehouse: Warehouse,
    market: str,
    inputs: list[SnapshotInput],
    contract: CarContract,
    run_id: str,
    today: dt.date | None = None,
) -> IngestReport:
    """Ingest the new or changed snapshots of one market; reject (and keep the old data of) bad ones."""
    report = IngestReport(market)
    ledger = read_ledger(warehouse, market)
    rules = contract_hash(contract)
    for item in sorted(inputs, key=lambda i: i.snapshot_date):
        content = item.content_hash()
        if ledger.get(item.snapshot_date) == ("ingested", content, rules):
            report.unchanged.append(item.snapshot_date)
            continue
        try:
            rows = _ingest_one(warehouse, item, contract, run_id, today)
        except (CarReadError, ContractError) as exc:
            rejection = Rejection(item.source, str(exc), item.snapshot_date, failure_cases(exc))
            report.rejected.append(rejection)
            _record(warehouse, item, (content, rules), ("rejected", str(exc), 0), run_id)
            continue
        report.ingested[item.snapshot_date] = rows
        _record(warehouse, item, (content, rules), ("ingested", "", rows), run_id)
    return report


def market_summary(warehouse: Warehouse, market: str, customer_key: str = "customer_id") -> dict[str, object]:
    """Snapshots held, rows, customers (latest snapshot and all time), first and last snapshot."""
    table = car_table(market)
    rows = query_if_exists(
        warehouse,
        table,
        f"select count(distinct snapshot_date) as snapshots, count(*) as rows, "
        f'count(distinct "{customer_key}") as customers, min(snapshot_date) as first, '
        f"max(snapshot_date) as last, count(*) filter (where snapshot_date = "
        f"(select max(snapshot_date) from {table})) as latest_rows from {table}",
    )
    if rows is None:
        return {"snapshots_held": 0, "rows": 0, "customers_latest": 0, "customers_all_time": 0}
    row = rows.iloc[0]
    return {
        "snapshots_held": int(row["snapshots"]),
        "rows": int(row["rows"]),
        "customers_latest": int(row["latest_rows"]),
        "customers_all_time": int(row["customers"]),
        "first_snapshot": str(pd.Timestamp(row["first"]).date()),
        "last_snapshot": str(pd.Timestamp(row["last"]).date()),
    }
