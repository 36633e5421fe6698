"""Data Checker 1, market-level checks: contract, volume, continuity and customer overlap."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from factory_assets.core.car import profile as prof
from factory_assets.core.car.check_types import CarCheckThresholds, CheckResult, MarketData
from factory_assets.core.car.inputs import Rejection


def check_contract(rejections: list[Rejection]) -> CheckResult:
    """Blocking: every landed snapshot of the market was readable and met the contract."""
    rejected = [
        {
            "file": r.source,
            "snapshot_date": None if r.snapshot_date is None else str(r.snapshot_date),
            "reason": r.reason,
            "failure_cases": r.failure_cases,
        }
        for r in rejections
    ]
    summary = (
        "every landed snapshot met the contract"
        if not rejected
        else f"{len(rejected)} file(s) rejected: " + "; ".join(r.reason for r in rejections)
    )
    return CheckResult("contract", not rejected, summary, float(len(rejected)), 0.0, {"rejected": rejected})


def check_volume(data: MarketData, t: CarCheckThresholds) -> CheckResult:
    """Blocking: the latest snapshot is not much smaller than the median of the trailing ones."""
    if not data.counts:
        return CheckResult("volume", False, "no snapshot of the market is held", 0.0, t.min_volume_ratio)
    latest = data.dates[-1]
    trailing = [data.counts[d] for d in data.dates[:-1][-t.trailing_snapshots :]]
    if not trailing:
        summary = f"first snapshot {latest}: nothing to compare"
        return CheckResult("volume", True, summary, None, t.min_volume_ratio)
    median = float(pd.Series(trailing).median())
    ratio = data.counts[latest] / median
    detail = {"latest": str(latest), "rows": data.counts[latest], "trailing_median": median}
    summary = f"{data.counts[latest]} rows on {latest} = {ratio:.2f} x the trailing median {median:.0f}"
    return CheckResult("volume", ratio >= t.min_volume_ratio, summary, ratio, t.min_volume_ratio, detail)


def _months(dates: list[dt.date]) -> list[dt.date]:
    first, last = dates[0].replace(day=1), dates[-1].replace(day=1)
    months, current = [], first
    while current <= last:
        months.append(current)
        current = (current + dt.timedelta(days=32)).replace(day=1)
    return months


def check_continuity(data: MarketData) -> CheckResult:
    """Blocking: one snapshot per month, none missing between the first and the last."""
    if not data.counts:
        return CheckResult("continuity", True, "no snapshot held", 0.0, 0.0)
    held = pd.Series([d.replace(day=1) for d in data.dates]).value_counts()
    missing = [f"{m:%Y-%m}" for m in _months(data.dates) if m not in held.index]
    doubled = sorted(f"{m:%Y-%m}" for m, n in held.items() if n > 1)
    problems = ([f"missing month(s) {', '.join(missing)}"] if missing else []) + (
        [f"several snapshots in month(s) {', '.join(doubled)}"] if doubled else []
    )
    summary = "; ".join(problems) or f"{len(data.dates)} consecutive monthly snapshots"
    detail = {"missing_months": missing, "months_with_several_snapshots": doubled}
    return CheckResult("continuity", not problems, summary, float(len(missing) + len(doubled)), 0.0, detail)


def check_customer_overlap(db: prof.Reader, data: MarketData, t: CarCheckThresholds) -> CheckResult:
    """Blocking: most customers of the previous snapshot are still in the latest one."""
    if not data.pair:
        return CheckResult("customer_overlap", True, "fewer than two snapshots", None, t.min_customer_overlap)
    previous, latest = data.pair
    common = prof.customer_overlap(db, data.table, data.customer_key, previous, latest)
    share = common / data.counts[previous]
    summary = f"{share:.1%} of the {data.counts[previous]} customers of {previous} are in {latest}"
    detail = {"previous": str(previous), "latest": str(latest), "common_customers": common}
    passed = share >= t.min_customer_overlap
    return CheckResult("customer_overlap", passed, summary, share, t.min_customer_overlap, detail)
