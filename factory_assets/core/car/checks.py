"""Data Checker 1: checks on a market's CAR after ingest, stored, and the market's gate.

The checks run once per ingest, against the warehouse (aggregates in DuckDB, `car_profile`), on
the latest snapshot held; every result is stored in `ops.car_check_results` and the market's gate
(`ops.cell_status`, stage `data_checker_1`) is "failed" iff a blocking check failed. The Dagster
checks only report the stored rows, so a check's result and the gate can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

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
) -> list[CheckResult]:
    """Every Data Checker 1 check for the market's latest snapshot held, in `CHECKS` order.

    `severities` (the deployment's, for this market) change a check's severity; an `off` check is
    not run and reports that it was turned off. `label_columns` (the contract's role 'label') are
    checked as labels (`labels`), never as features by the null-rate, category and PSI checks.
    """
    t, chosen = thresholds or CarCheckThresholds(), dict(severities or {})
    with warehouse.connect() as con:
        db = prof.ConnectionReader(con)
        data = market_data(db, market, customer_key, label_columns)
        levels = prof.level_counts(db, data.table, category_columns(data, t), data.pair) if data.pair else {}
        changes = level_changes(levels, data, t) if data.pair else None
        checks: dict[str, Callable[[], CheckResult]] = {
            "contract": lambda: check_contract(rejections),
            "volume": lambda: check_volume(data, t),
            "continuity": lambda: check_continuity(data),
            "customer_overlap": lambda: check_customer_overlap(db, data, t),
            "category_explosion": lambda: check_category_explosion(changes, t),
            "null_rate": lambda: check_null_rate(data, t),
            "category_changes": lambda: check_category_changes(changes),
            "psi": lambda: check_psi(db, data, t, levels),
            "labels": lambda: check_labels(db, data),
        }
        return [_run_one(name, check, chosen.get(name)) for name, check in checks.items()]


def _run_one(name: str, check: Callable[[], CheckResult], severity: Severity | None) -> CheckResult:
    if severity == "off":
        return CheckResult(name, True, "off: turned off for this market by the deployment", configured="off")
    return replace(check(), configured=severity)


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
    }.items()
}
"""What each check verifies (its function's docstring): the check descriptions in the UI."""
