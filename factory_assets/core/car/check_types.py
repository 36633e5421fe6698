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
Severity = Literal["blocking", "warning", "off"]
"""`off`: the deployment turned the check off for the market (it is not run and never fails)."""
CHECKS: dict[str, Severity] = {
    "contract": "blocking",
    "volume": "blocking",
    "continuity": "blocking",
    "customer_overlap": "blocking",
    "category_explosion": "blocking",
    "null_rate": "warning",
    "category_changes": "warning",
    "psi": "warning",
    "labels": "warning",
    "extreme_psi": "warning",
    "restatement": "blocking",
    "checks_ran": "blocking",
}
"""Every Data Checker 1 check and its default severity (a failed blocking check fails the gate).

A deployment may change a check's severity, per market (`config/factory.yaml`). `extreme_psi` warns
at the snapshot and blocks per cell: Data Checker 2's `features_sound` holds back the release of a
cell whose champion reads an extremely shifted column (the car stage does not know the champions)."""


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
    block_psi: float = Field(
        3.0,
        gt=0,
        description="A feature column whose PSI vs the previous snapshot reaches this is an extreme shift "
        "(e.g. a unit changed x100, PSI ~8) that no model trained on the earlier data survives: it holds "
        "back the release of every cell whose champion reads the column, and is a warning for the rest. "
        "Real business shifts stay below it (the demo's 25% price rise: PSI ~1.1) and go to the retrain "
        "triggers.",
    )
    restatement_max_row_change: float = Field(
        0.05,
        ge=0,
        description="A re-delivered month whose row count differs from the version it replaces by more "
        "than this share is a large change (blocking unless the deployment accepts restatements).",
    )
    restatement_min_key_overlap: float = Field(
        0.95,
        ge=0,
        le=1,
        description="...or in which a smaller share of the replaced version's customers remains...",
    )
    restatement_max_psi: float = Field(
        0.1, gt=0, description="...or in which a column's PSI vs the replaced version reaches this."
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
    configured: Severity | None = None
    """The deployment's severity for this check and market, if it changes the default."""

    @property
    def severity(self) -> Severity:
        """`blocking`, `warning` or `off`: the deployment's choice, else the default in `CHECKS`."""
        return self.configured or CHECKS[self.check]


@dataclass(frozen=True)
class MarketData:
    """What the checks share: the table, its columns and rows per snapshot."""

    table: str
    customer_key: str
    counts: dict[dt.date, int]
    columns: prof.CarColumns
    """The feature-like columns the column checks read: keys, lineage and label columns excluded."""
    pair_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Non-null (`n:<col>`) and approximate distinct (`d:<col>`) counts by [previous, latest]."""
    labels: tuple[str, ...] = ()
    """Label columns (the contract's role 'label') held in the table: checked by `labels` only."""
    missing_labels: tuple[str, ...] = ()
    """Label columns the contract declares that the table does not hold."""

    @property
    def dates(self) -> list[dt.date]:
        """Snapshot dates held, oldest first."""
        return list(self.counts)

    @property
    def pair(self) -> list[dt.date]:
        """[previous, latest] snapshot dates, or [] when fewer than two are held."""
        return self.dates[-2:] if len(self.counts) >= 2 else []


def market_data(
    db: prof.Reader,
    market: str,
    customer_key: str,
    label_columns: frozenset[str] = frozenset(),
    table: str | None = None,
) -> MarketData:
    """Rows per snapshot and checkable columns of `car.<market>` (empty if the table is absent).

    `label_columns` (the contract's role 'label') are set apart from the feature columns: their
    recent values are missing by nature, so they get the label check, not null-rate or drift checks.
    """
    table = table or car_table(market)
    if not prof.table_exists(db, table):
        return MarketData(table, customer_key, {}, prof.CarColumns((), (), ()))
    skip = {customer_key, "snapshot_date", SOURCE_COLUMN, *LINEAGE_COLUMNS}
    counts = prof.snapshot_rows(db, table)
    held = prof.table_columns(db, table, skip)
    labels = tuple(c for c in held.all if c in label_columns)
    missing = tuple(sorted(label_columns - set(held.all)))
    columns = held.without(label_columns)
    pair = list(counts)[-2:] if len(counts) >= 2 else []
    pair_counts = prof.non_null_counts(db, table, columns.all, pair) if pair else pd.DataFrame()
    return MarketData(table, customer_key, counts, columns, pair_counts, labels, missing)
