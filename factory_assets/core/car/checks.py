"""Data Checker 1: checks on a market's CAR after ingest, stored, and the market's gate.

The checks run once per ingest, against the warehouse (aggregates in DuckDB, `car_profile`), on
the latest snapshot held; every result is stored in `ops.car_check_results` and the market's gate
(`ops.cell_status`, stage `data_checker_1`) is "failed" iff a blocking check failed. The Dagster
checks only report the stored rows, so a check's result and the gate can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache

from factory_assets.core.car import profile as prof
from factory_assets.core.car.check_columns import (
    category_columns,
    check_category_changes,
    check_category_explosion,
    check_labels,
    check_null_rate,
    check_psi,
    level_changes,
)
from factory_assets.core.car.check_market import (
    check_continuity,
    check_contract,
    check_customer_overlap,
    check_volume,
)
from factory_assets.core.car.check_restatement import Restatement, check_restatement
from factory_assets.core.car.check_types import (
    CHECKS,
    STAGE,
    CarCheckThresholds,
    CheckResult,
    MarketData,
    Severity,
    market_data,
)
from factory_assets.core.car.inputs import Rejection
from factory_assets.core.car.staging import StagedSnapshot, replaced_version, staged_view
from factory_assets.core.warehouse import Warehouse

__all__ = [
    "CHECKS",
    "DESCRIPTIONS",
    "STAGE",
    "CarCheckThresholds",
    "CheckResult",
    "MarketData",
    "Severity",
    "market_data",
    "run_checks",
]


def run_checks(
    warehouse: Warehouse,
    market: str,
    rejections: list[Rejection],
    thresholds: CarCheckThresholds | None = None,
    customer_key: str = "customer_id",
    severities: Mapping[str, Severity] | None = None,
    label_columns: frozenset[str] = frozenset(),
    staged: StagedSnapshot | None = None,
    accept_restatements: bool = False,
) -> list[CheckResult]:
    """Every Data Checker 1 check for the market's latest snapshot held, in `CHECKS` order.

    With `staged`, the checks judge that delivered snapshot instead, beside the snapshots held before
    it (`staging.staged_view`), and compare it with the version of its month it would replace.
    `severities` (the deployment's, for this market) change a check's severity; an `off` check is
    not run and reports that it was turned off. A check that raises fails as blocking with the error.
    `label_columns` (the contract's role 'label') are checked as labels (`labels`), never as features
    by the null-rate, category and PSI checks.
    """
    t, chosen = thresholds or CarCheckThresholds(), dict(severities or {})
    with warehouse.connect() as con, staged_view(con, market, staged) as table:
        db = prof.ConnectionReader(con)
        data = market_data(db, market, customer_key, label_columns, table)
        levels = prof.level_counts(db, data.table, category_columns(data, t), data.pair) if data.pair else {}
        changes = level_changes(levels, data, t) if data.pair else None
        psi = cache(lambda: check_psi(db, data, t, levels))
        replaced = replaced_version(con, market, staged.snapshot_date) if staged else None
        restated = None if replaced is None else Restatement(replaced, staged.frame, accept_restatements)
        checks: dict[str, Callable[[], CheckResult]] = {
            "contract": lambda: check_contract(rejections),
            "volume": lambda: check_volume(data, t),
            "continuity": lambda: check_continuity(data),
            "customer_overlap": lambda: check_customer_overlap(db, data, t),
            "category_explosion": lambda: check_category_explosion(changes, t),
            "null_rate": lambda: check_null_rate(data, t),
            "category_changes": lambda: check_category_changes(changes),
            "psi": psi,
            "labels": lambda: check_labels(db, data),
            "extreme_psi": lambda: check_extreme_psi(psi(), data, t),
            "restatement": lambda: check_restatement(restated, customer_key, t),
            "checks_ran": check_runs,
        }
        return [run_one(name, check, chosen.get(name)) for name, check in checks.items()]


def check_extreme_psi(psi: CheckResult, data: MarketData, t: CarCheckThresholds) -> CheckResult:
    """Warning: no feature column's PSI vs the previous snapshot reaches `block_psi` (labels are exempt).

    An extreme column is recorded with its PSI in the snapshot's verdict (`detail["extreme"]`), and
    Data Checker 2 (`features_sound`) holds back the release of each cell whose champion reads it;
    cells whose champion does not read it go on. A column null throughout the latest snapshot is left
    to the null-rate and PSI warnings.
    """
    values = dict(psi.detail.get("psi", {}))  # type: ignore[call-overload]
    emptied = {c for c in values if data.pair and data.pair_counts.loc[f"n:{c}", data.pair[1]] == 0}
    extreme = {c: v for c, v in values.items() if v >= t.block_psi and c not in emptied}
    worst = max(values.values(), default=0.0)
    previous = str(data.pair[0]) if data.pair else None
    summary = (
        f"extreme shift vs {previous} (PSI >= {t.block_psi}): "
        + ", ".join(f"{c} (PSI {v:.2f})" for c, v in extreme.items())
        + "; holds back the cells whose champion reads them"
        if extreme
        else f"no column's PSI reaches {t.block_psi}"
    )
    detail = {"extreme": extreme, "previous": previous, "block_psi": t.block_psi}
    return CheckResult("extreme_psi", not extreme, summary, worst, t.block_psi, detail)


def check_runs() -> CheckResult:
    """Blocking: every check could run on the snapshot (one that raises is a blocking verdict)."""
    return CheckResult("checks_ran", True, "every check ran", 0.0, 0.0)


def crashed(name: str, exc: Exception) -> CheckResult:
    """A check that raised: a blocking failure naming the error (never a crash that leaves data behind)."""
    summary = f"the check raised {type(exc).__name__}: {exc}"
    return CheckResult(
        name, False, summary[:1000], detail={"error": type(exc).__name__}, configured="blocking"
    )


def run_one(name: str, check: Callable[[], CheckResult], severity: Severity | None) -> CheckResult:
    """Run one check with the deployment's severity; `off` is not run, one that raises fails as blocking."""
    if severity == "off":
        return CheckResult(name, True, "off: turned off for this market by the deployment", configured="off")
    try:
        result = check()
    except Exception as exc:
        return crashed(name, exc)
    return replace(result, configured=severity)


DESCRIPTIONS: dict[str, str] = {
    name: (function.__doc__ or "").strip()
    for name, function in {
        "contract": check_contract,
        "volume": check_volume,
        "continuity": check_continuity,
        "customer_overlap": check_customer_overlap,
        "category_explosion": check_category_explosion,
        "null_rate": check_null_rate,
        "category_changes": check_category_changes,
        "psi": check_psi,
        "labels": check_labels,
        "extreme_psi": check_extreme_psi,
        "restatement": check_restatement,
        "checks_ran": check_runs,
    }.items()
}
"""What each check verifies (its function's docstring): the check descriptions in the UI."""
