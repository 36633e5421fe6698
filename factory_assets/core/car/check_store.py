"""Data Checker 1 results in `ops.car_check_results`, and the market gate they imply.

Results are written once per evaluation, replacing the rows of (market, checked snapshot). The
Dagster checks read back the market's most recent evaluation, and the gate in `ops.cell_status`
is derived from the same results, so the two can never disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import pandas as pd
import pyarrow

from factory_assets.core import cell_status
from factory_assets.core.car.checks import (
    CHECKS,
    STAGE,
    CarCheckThresholds,
    CheckResult,
    Severity,
    run_checks,
)
from factory_assets.core.car.inputs import Rejection
from factory_assets.core.car.profile import query_if_exists
from factory_assets.core.cell_status import MARKET_WIDE, StageOutcome
from factory_assets.core.names import Table, car_table
from factory_assets.core.warehouse import Warehouse


def results_frame(market: str, snapshot_date: dt.date, results: list[CheckResult]) -> pd.DataFrame:
    """The rows of one evaluation, in the `ops.car_check_results` layout."""
    frame = pd.DataFrame(
        {
            "market": market,
            "snapshot_date": [snapshot_date] * len(results),
            "check": [r.check for r in results],
            "severity": [r.severity for r in results],
            "passed": [r.passed for r in results],
            "value": pd.array([r.value for r in results], dtype="Float64"),
            "threshold": pd.array([r.threshold for r in results], dtype="Float64"),
            "detail": [json.dumps({"summary": r.summary, **r.detail}, default=str) for r in results],
        }
    )
    frame["snapshot_date"] = frame["snapshot_date"].astype(pd.ArrowDtype(pyarrow.date32()))
    return frame


def store_results(
    warehouse: Warehouse, market: str, snapshot_date: dt.date, results: list[CheckResult], run_id: str
) -> int:
    """Replace the stored results of (market, snapshot_date) with this evaluation."""
    frame = results_frame(market, snapshot_date, results)
    partition = {"market": market, "snapshot_date": snapshot_date}
    return warehouse.replace_partition(Table.CAR_CHECK_RESULTS, frame, partition, run_id)


def gate_outcome(market: str, results: list[CheckResult]) -> StageOutcome:
    """`failed` iff a blocking check failed, naming the checks; `ok` names any failed warnings."""
    blocking = [r for r in results if not r.passed and r.severity == "blocking"]
    warnings = [r.check for r in results if not r.passed and r.severity == "warning"]
    if blocking:
        message = "blocking checks failed: " + "; ".join(f"{r.check} ({r.summary})" for r in blocking)
        return StageOutcome(market, MARKET_WIDE, STAGE, "failed", message[:2000])
    message = "blocking checks passed" + (f"; warnings: {', '.join(warnings)}" if warnings else "")
    return StageOutcome(market, MARKET_WIDE, STAGE, "ok", message)


def record_evaluation(
    warehouse: Warehouse, market: str, snapshot_date: dt.date, results: list[CheckResult], run_id: str
) -> StageOutcome:
    """Store the results and the gate they imply; return the gate."""
    store_results(warehouse, market, snapshot_date, results, run_id)
    outcome = gate_outcome(market, results)
    cell_status.record(warehouse, outcome, run_id)
    return outcome


def evaluate_market(
    warehouse: Warehouse,
    market: str,
    rejections: list[Rejection],
    run_id: str,
    thresholds: CarCheckThresholds | None = None,
    customer_key: str = "customer_id",
    severities: Mapping[str, Severity] | None = None,
    label_columns: frozenset[str] = frozenset(),
) -> tuple[dt.date, list[CheckResult], StageOutcome]:
    """Run Data Checker 1 on the market's latest snapshot held, store the results and the gate.

    With nothing held (every file rejected), the results are filed under the latest rejected
    snapshot; with nothing held and nothing rejected there is nothing to check, which raises.
    `label_columns` (the contract's role 'label') are checked as labels, not as features.
    """
    results = run_checks(warehouse, market, rejections, thresholds, customer_key, severities, label_columns)
    held = [d for d in [latest_snapshot(warehouse, market)] if d is not None]
    candidates = held or [r.snapshot_date for r in rejections if r.snapshot_date is not None]
    if not candidates:
        reasons = "; ".join(r.reason for r in rejections) or "no CAR file landed"
        raise ValueError(f"market '{market}': no snapshot held and none to check ({reasons})")
    checked = max(candidates)
    return checked, results, record_evaluation(warehouse, market, checked, results, run_id)


def latest_snapshot(warehouse: Warehouse, market: str) -> dt.date | None:
    """The newest snapshot date held in `car.<market>`, or None."""
    table = car_table(market)
    rows = query_if_exists(warehouse, table, f"select max(snapshot_date) from {table}")
    value = None if rows is None else rows.iloc[0, 0]
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def latest_results(warehouse: Warehouse, market: str) -> pd.DataFrame:
    """The market's most recent evaluation (one row per check; empty if none was stored)."""
    rows = query_if_exists(
        warehouse,
        Table.CAR_CHECK_RESULTS,
        f'select market, snapshot_date, "check", severity, passed, value, threshold, detail, _run_id '
        f"from {Table.CAR_CHECK_RESULTS} where market = ? and _written_at = "
        f"(select max(_written_at) from {Table.CAR_CHECK_RESULTS} where market = ?)",
        [market, market],
    )
    if rows is None:
        return pd.DataFrame(columns=["check", "severity", "passed", "value", "threshold", "detail"])
    return rows


def stored_result(warehouse: Warehouse, market: str, check: str) -> dict[str, object]:
    """One check's row of the market's latest evaluation; raises if the market was never checked."""
    if check not in CHECKS:
        raise KeyError(f"unknown Data Checker 1 check '{check}' (known: {', '.join(CHECKS)})")
    rows = latest_results(warehouse, market)
    row = rows[rows["check"] == check]
    if row.empty:
        raise LookupError(
            f"no stored Data Checker 1 result '{check}' for market '{market}' in {Table.CAR_CHECK_RESULTS}: "
            "materialise car_snapshots for this market first"
        )
    record = row.iloc[0].to_dict()
    record["detail"] = json.loads(str(record["detail"]))
    return record
