"""Data Checker 1: checks on a market's CAR after ingest, stored, and the market's gate.

The checks run once per ingest, against the warehouse (aggregates in DuckDB, `car_profile`), on
the latest snapshot held; every result is stored in `ops.car_check_results` and the market's gate
(`ops.cell_status`, stage `data_checker_1`) is "failed" iff a blocking check failed. The Dagster
checks only report the stored rows, so a check's result and the gate can never disagree.
"""

from __future__ import annotations

from factory_assets.core.car import profile as prof
from factory_assets.core.car.check_columns import (
    category_columns,
    check_category_changes,
    check_category_explosion,
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
) -> list[CheckResult]:
    """Every Data Checker 1 check for the market's latest snapshot held, in `CHECKS` order."""
    t = thresholds or CarCheckThresholds()
    with warehouse.connect() as con:
        db = prof.ConnectionReader(con)
        data = market_data(db, market, customer_key)
        levels = prof.level_counts(db, data.table, category_columns(data, t), data.pair) if data.pair else {}
        changes = level_changes(levels, data, t) if data.pair else None
        return [
            check_contract(rejections),
            check_volume(data, t),
            check_continuity(data),
            check_customer_overlap(db, data, t),
            check_category_explosion(changes, t),
            check_null_rate(data, t),
            check_category_changes(changes),
            check_psi(db, data, t, levels),
        ]


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
    }.items()
}
"""What each check verifies (its function's docstring): the check descriptions in the UI."""
