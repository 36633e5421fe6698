"""Admit delivered CAR snapshots: stage, check, and only then make them part of `car.<market>`.

For each new or changed snapshot of a market (content hash and contract hash vs `ops.car_files`),
oldest first:
1. read and validate it: the contract, unnamed or case-clashing columns, values the stored column
   types would change (`storable`); a failure is a rejection naming the file;
2. run Data Checker 1 on it beside the snapshots held before it (`staging`), with the comparison
   against the version of its month it would replace; a check that raises is a blocking failure;
3. its verdict (pass / warn / block, with reasons) goes into `ops.car_snapshot_verdicts`, keyed by
   market, snapshot and content hash. Only a snapshot whose verdict does not block is written to
   `car.<market>`, in the same transaction as its ledger row and its verdict.
So `car.<market>` holds only checked snapshots that passed. A rejected or blocked snapshot is
checked again on every run until it passes (a late month may unblock the month after it) or its
file changes; an admitted one is skipped while its file and the contract are unchanged.

The market's evaluation (what the Dagster checks show, and the gate in `ops.cell_status`) sums up
the run: per check, a blocking failure of any snapshot checked in this run, else the result for
the newest one; with nothing new to check, the checks run on the snapshots held, as before.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import duckdb
import pandas as pd
import pyarrow

from factory_assets.core import cell_status
from factory_assets.core.car.check_market import check_contract
from factory_assets.core.car.check_store import gate_outcome, latest_snapshot, store_results
from factory_assets.core.car.checks import (
    CHECKS,
    CarCheckThresholds,
    CheckResult,
    Severity,
    crashed,
    run_checks,
    run_one,
)
from factory_assets.core.car.ingest import (
    IngestReport,
    align_columns,
    contract_hash,
    failure_cases,
    prepare_snapshot,
    read_ledger,
)
from factory_assets.core.car.inputs import Rejection, SnapshotInput
from factory_assets.core.car.source import CarReadError
from factory_assets.core.car.staging import StagedSnapshot
from factory_assets.core.car.storable import check_storable
from factory_assets.core.car.verdicts import EXTREME_COLUMN, ExtremeShift, admitted_verdict
from factory_assets.core.cell_status import StageOutcome
from factory_assets.core.contract import CarContract, ContractError
from factory_assets.core.names import Table, car_table
from factory_assets.core.warehouse import Warehouse, column_types

Verdict = Literal["pass", "warn", "block"]


@dataclass(frozen=True)
class CheckSettings:
    """Data Checker 1's settings for one market (the deployment's, see `Deployment.checker_one`)."""

    thresholds: CarCheckThresholds = field(default_factory=CarCheckThresholds)
    severities: Mapping[str, Severity] = field(default_factory=dict)
    customer_key: str = "customer_id"
    label_columns: frozenset[str] = frozenset()
    accept_restatements: bool = False


@dataclass(frozen=True)
class SnapshotVerdict:
    """One delivered snapshot's verdict, and whether it became part of `car.<market>`."""

    market: str
    snapshot_date: dt.date
    source: str
    content_hash: str
    verdict: Verdict
    reasons: list[str]
    admitted: bool
    restatement: str = ""
    """'' (a new month), 'close' (re-delivered, close to the replaced version), 'accepted' or 'blocked'."""
    rows: int = 0
    extreme: ExtremeShift = field(default_factory=ExtremeShift)
    """Feature columns whose PSI reached `block_psi`: the release gate blocks the cells that read them."""

    def frame(self, contract_rules: str) -> pd.DataFrame:
        """The row of `ops.car_snapshot_verdicts`."""
        row = {
            "market": self.market,
            "snapshot_date": self.snapshot_date,
            "content_hash": self.content_hash,
            "contract_hash": contract_rules,
            "source_file": self.source,
            "verdict": self.verdict,
            "reasons": json.dumps(self.reasons),
            "admitted": self.admitted,
            "restatement": self.restatement,
            "rows": self.rows,
            EXTREME_COLUMN: self.extreme.as_json(),
        }
        frame = pd.DataFrame([row]).astype({EXTREME_COLUMN: "string"})
        frame["snapshot_date"] = frame["snapshot_date"].astype(pd.ArrowDtype(pyarrow.date32()))
        return frame


@dataclass(frozen=True)
class AdmitReport:
    """What one admission run of a market did: the ingest summary, each verdict, the market's gate."""

    ingest: IngestReport
    verdicts: list[SnapshotVerdict]
    checked: dt.date
    results: list[CheckResult]
    gate: StageOutcome


def verdict_of(results: list[CheckResult]) -> tuple[Verdict, list[str]]:
    """`block` if a blocking check failed, `warn` if a warning did, else `pass`; the failed checks' lines."""
    failed = [r for r in results if not r.passed and r.severity != "off"]
    reasons = [f"{r.check} ({r.severity}): {r.summary}" for r in failed]
    if any(r.severity == "blocking" for r in failed):
        return "block", reasons
    return ("warn" if failed else "pass"), reasons


def restatement_kind(results: list[CheckResult]) -> str:
    """How the snapshot relates to the version it replaces, from the `restatement` check."""
    result = next((r for r in results if r.check == "restatement"), None)
    if result is None or "rows_replaced" not in result.detail:
        return ""
    if not result.detail.get("problems"):
        return "close"
    return "accepted" if result.passed else "blocked"


def extreme_shift(results: list[CheckResult]) -> ExtremeShift:
    """The extreme shifts `extreme_psi` found (none when it passed or was turned off)."""
    result = next((r for r in results if r.check == "extreme_psi"), None)
    if result is None or result.passed or result.severity == "off":
        return ExtremeShift()
    found = result.detail.get("extreme") or {}
    columns = {str(c): float(v) for c, v in dict(found).items()}  # type: ignore[call-overload]
    previous = result.detail.get("previous")
    return ExtremeShift(columns, result.threshold, None if previous is None else str(previous))


def stage_snapshot(
    warehouse: Warehouse, item: SnapshotInput, contract: CarContract, today: dt.date | None
) -> StagedSnapshot:
    """Read, validate and test that every value can be stored unchanged; raise naming the file."""
    frame = prepare_snapshot(item.load(), contract, item, today)
    check_storable(warehouse, car_table(item.market), frame, item.source, contract.customer_key)
    return StagedSnapshot(frame, item.snapshot_date, item.source, item.content_hash())


def check_staged(
    warehouse: Warehouse, market: str, staged: StagedSnapshot, s: CheckSettings
) -> list[CheckResult]:
    """Data Checker 1 on a staged snapshot; if the checks cannot run at all, each blocks with the error."""
    try:
        return run_checks(
            warehouse, market, [], s.thresholds, s.customer_key, s.severities, s.label_columns,
            staged=staged, accept_restatements=s.accept_restatements,
        )  # fmt: skip
    except Exception as exc:
        return [crashed(name, exc) for name in CHECKS]


def _ledger_frame(verdict: SnapshotVerdict, rules: str, status: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "market": verdict.market,
                "snapshot_date": verdict.snapshot_date,
                "source_file": verdict.source,
                "content_hash": verdict.content_hash,
                "contract_hash": rules,
                "status": status,
                "reason": "; ".join(verdict.reasons)[:2000],
                "rows": verdict.rows if verdict.admitted else 0,
            }
        ]
    )


def record_verdict(
    warehouse: Warehouse,
    verdict: SnapshotVerdict,
    rules: str,
    run_id: str,
    staged: StagedSnapshot | None = None,
) -> None:
    """Store the verdict and the ledger row; an admitted snapshot's rows go into `car.<market>` with them."""
    day = verdict.snapshot_date
    status = "ingested" if verdict.admitted else ("rejected" if staged is None else "blocked")
    writes: list[tuple[str, pd.DataFrame, Mapping[str, object]]] = [
        (
            Table.CAR_FILES,
            _ledger_frame(verdict, rules, status),
            {"market": verdict.market, "snapshot_date": day},
        ),
        (
            Table.CAR_VERDICTS,
            verdict.frame(rules),
            {"market": verdict.market, "snapshot_date": day, "content_hash": verdict.content_hash},
        ),
    ]
    if verdict.admitted and staged is not None:
        align_columns(warehouse, car_table(verdict.market), staged.frame)
        writes.insert(0, (car_table(verdict.market), staged.frame, {"snapshot_date": day}))
    _add_extreme_column(warehouse)
    warehouse.replace_partitions(writes, run_id)


def _add_extreme_column(warehouse: Warehouse) -> None:
    """Give a verdict table written before per-cell extreme shifts their column (its rows read as none)."""

    def alter(con: duckdb.DuckDBPyConnection) -> None:
        if column_types(con, Table.CAR_VERDICTS):
            con.execute(f"alter table {Table.CAR_VERDICTS} add column if not exists {EXTREME_COLUMN} varchar")

    warehouse.execute(alter)


def _admit_one(
    warehouse: Warehouse, item: SnapshotInput, contract: CarContract, s: CheckSettings, run_id: str,
    today: dt.date | None,
) -> tuple[SnapshotVerdict, list[CheckResult] | None, Rejection | None]:  # fmt: skip
    rules, content = contract_hash(contract), item.content_hash()
    try:
        staged = stage_snapshot(warehouse, item, contract, today)
    except (CarReadError, ContractError) as exc:
        rejection = Rejection(item.source, str(exc), item.snapshot_date, failure_cases(exc))
        reasons = [f"contract (blocking): {exc}"]
        verdict = SnapshotVerdict(
            item.market, item.snapshot_date, item.source, content, "block", reasons, False
        )
        record_verdict(warehouse, verdict, rules, run_id)
        return verdict, None, rejection
    results = check_staged(warehouse, item.market, staged, s)
    kind, reasons = verdict_of(results)
    verdict = SnapshotVerdict(
        item.market, item.snapshot_date, item.source, content, kind, reasons, kind != "block",
        restatement_kind(results), len(staged.frame), extreme_shift(results),
    )  # fmt: skip
    try:
        record_verdict(warehouse, verdict, rules, run_id, staged)
    except duckdb.ConversionException as exc:
        error = ContractError(
            f"{item.source}: a value does not fit the type stored in {car_table(item.market)}: {exc}"
        )
        refused = replace(verdict, verdict="block", reasons=[f"contract (blocking): {error}"], admitted=False)
        record_verdict(warehouse, refused, rules, run_id)
        return refused, None, Rejection(item.source, str(error), item.snapshot_date)
    return verdict, results, None


def merge_results(
    evaluations: list[tuple[dt.date, list[CheckResult]]], rejections: list[Rejection], s: CheckSettings
) -> list[CheckResult]:
    """Per check: a blocking failure from any snapshot checked (the latest such), else the newest result."""
    merged: dict[str, CheckResult] = {}
    for day, results in evaluations:
        for result in results:
            dated = replace(result, detail={**result.detail, "snapshot": str(day)})
            current = merged.get(result.check)
            if current is None or not _blocks(current) or _blocks(dated):
                merged[result.check] = dated
    merged["contract"] = run_one("contract", lambda: check_contract(rejections), s.severities.get("contract"))
    return [merged[name] for name in CHECKS if name in merged]


def _blocks(result: CheckResult) -> bool:
    return not result.passed and result.severity == "blocking"


def admit_market(
    warehouse: Warehouse,
    market: str,
    inputs: list[SnapshotInput],
    problems: list[Rejection],
    contract: CarContract,
    run_id: str,
    settings: CheckSettings | None = None,
    today: dt.date | None = None,
) -> AdmitReport:
    """Stage, check and admit the market's new or changed snapshots; store each verdict and the gate."""
    s = settings or CheckSettings(customer_key=contract.customer_key, label_columns=contract.label_columns)
    ledger, rules = read_ledger(warehouse, market), contract_hash(contract)
    report, verdicts, evaluations = IngestReport(market), [], []
    rejections = list(problems)
    for item in sorted(inputs, key=lambda i: i.snapshot_date):
        if ledger.get(item.snapshot_date) == ("ingested", item.content_hash(), rules):
            report.unchanged.append(item.snapshot_date)
            continue
        verdict, results, rejection = _admit_one(warehouse, item, contract, s, run_id, today)
        verdicts.append(verdict)
        if rejection is not None:
            rejections.append(rejection)
            report.rejected.append(rejection)
        if results is not None:
            evaluations.append((item.snapshot_date, results))
        if verdict.admitted:
            report.ingested[item.snapshot_date] = verdict.rows
    checked, results = _market_results(warehouse, market, evaluations, rejections, s)
    store_results(warehouse, market, checked, results, run_id)
    gate = _with_restatements(gate_outcome(market, results), verdicts)
    cell_status.record(warehouse, gate, run_id)
    return AdmitReport(report, verdicts, checked, results, gate)


def _market_results(
    warehouse: Warehouse,
    market: str,
    evaluations: list[tuple[dt.date, list[CheckResult]]],
    rejections: list[Rejection],
    s: CheckSettings,
) -> tuple[dt.date, list[CheckResult]]:
    """The run's evaluation of the market and the snapshot it is filed under."""
    dates = [d for d, _ in evaluations] + [r.snapshot_date for r in rejections if r.snapshot_date is not None]
    if evaluations:
        return max(dates), merge_results(evaluations, rejections, s)
    results = run_checks(
        warehouse, market, rejections, s.thresholds, s.customer_key, s.severities, s.label_columns
    )
    held = latest_snapshot(warehouse, market)
    candidates = [held] if held is not None else dates
    if not candidates:
        reasons = "; ".join(r.reason for r in rejections) or "no CAR file landed"
        raise ValueError(f"market '{market}': no snapshot held and none to check ({reasons})")
    return max(candidates), results


def _with_restatements(gate: StageOutcome, verdicts: list[SnapshotVerdict]) -> StageOutcome:
    accepted = [str(v.snapshot_date) for v in verdicts if v.restatement == "accepted"]
    if not accepted:
        return gate
    return replace(gate, message=f"{gate.message}; accepted restatement(s) of {', '.join(accepted)}")


def snapshot_restatement(warehouse: Warehouse, market: str, day: dt.date) -> str:
    """How the admitted version of `day` arrived: '' (first delivery), 'close' or 'accepted'."""
    found = admitted_verdict(warehouse, market, day)
    return "" if found is None else found.restatement


def snapshot_verdict(warehouse: Warehouse, market: str, day: dt.date) -> str:
    """The verdict of the snapshot of `day` held in `car.<market>` ('unrecorded' if it predates verdicts)."""
    found = admitted_verdict(warehouse, market, day)
    return "unrecorded" if found is None else found.verdict
