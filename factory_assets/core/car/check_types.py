"""Data Checker 1's vocabulary: the checks and their severity, thresholds, results, shared inputs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from factory_assets.core.car import profile as prof
from factory_assets.core.car.ingest import SOURCE_COLUMN
from factory_assets.core.names import Stage, car_table
from factory_assets.core.warehouse import LINEAGE_COLUMNS

STAGE = Stage.DATA_CHECKER_1
Severity = Literal["blocking", "warning"]
CHECKS: dict[str, Severity] = {
    "contract": "blocking",
    "volume": "blocking",
    "continuity": "blocking",
    "customer_overlap": "blocking",
    "category_explosion": "blocking",
    "null_rate": "warning",
    "category_changes": "warning",
    "psi": "warning",
}
"""Every Data Checker 1 check and its severity (a failed blocking check fails the market's gate)."""


class CarCheckThresholds(BaseModel):
    """Thresholds of Data Checker 1, with defaults for a monthly customer CAR."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trailing_snapshots: int = Field(
        3, ge=1, le=24, description="Snapshots before the latest whose median row count is the reference."
    )
    min_volume_ratio: float = Field(
        0.5, gt=0, le=1, description="Blocking when the latest row count is below this share of the median."
    )
    max_null_rate_increase: float = Field(
        0.1, gt=0, le=1, description="Warning when a column's null share rises by more than this (absolute)."
    )
    max_levels: int = Field(
        100, ge=2, description="Text columns with more distinct values are free text, not categories."
    )
    explosion_new_level_ratio: float = Field(
        0.5, gt=0, description="Blocking when new levels exceed this share of the previous level count..."
    )
    explosion_min_new_levels: int = Field(10, ge=1, description="...and number at least this many.")
    psi_bins: int = Field(10, ge=2, le=50, description="Quantile bins of a numeric column for the PSI.")
    max_psi: float = Field(
        0.25, gt=0, description="Warning when a column's PSI vs the previous snapshot reaches this."
    )
    min_customer_overlap: float = Field(
        0.6, ge=0, le=1, description="Blocking when a smaller share of the previous customers remains."
    )


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome for one market; `summary` is the line a reviewer reads first."""

    check: str
    passed: bool
    summary: str
    value: float | None = None
    threshold: float | None = None
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        """`blocking` or `warning`, fixed per check (see `CHECKS`)."""
        return CHECKS[self.check]


@dataclass(frozen=True)
class MarketData:
    """What the checks share: the table, its columns and rows per snapshot."""

    table: str
    customer_key: str
    counts: dict[dt.date, int]
    columns: prof.CarColumns
    pair_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Non-null (`n:<col>`) and approximate distinct (`d:<col>`) counts by [previous, latest]."""

    @property
    def dates(self) -> list[dt.date]:
        """Snapshot dates held, oldest first."""
        return list(self.counts)

    @property
    def pair(self) -> list[dt.date]:
        """[previous, latest] snapshot dates, or [] when fewer than two are held."""
        return self.dates[-2:] if len(self.counts) >= 2 else []


def market_data(db: prof.Reader, market: str, customer_key: str) -> MarketData:
    """Rows per snapshot and checkable columns of `car.<market>` (empty if the table is absent)."""
    table = car_table(market)
    if not prof.table_exists(db, table):
        return MarketData(table, customer_key, {}, prof.CarColumns((), (), ()))
    skip = {customer_key, "snapshot_date", SOURCE_COLUMN, *LINEAGE_COLUMNS}
    counts = prof.snapshot_rows(db, table)
    columns = prof.table_columns(db, table, skip)
    pair = list(counts)[-2:] if len(counts) >= 2 else []
    pair_counts = prof.non_null_counts(db, table, columns.all, pair) if pair else pd.DataFrame()
    return MarketData(table, customer_key, counts, columns, pair_counts)
