"""Per-cell stage status: the gate that lets one bad cell stop without holding back its row.

Dagster evaluates a partitioned check once for a range run, so a blocking check would stop every
cell of a market's row. The gate therefore lives here: each stage records, per cell, whether it
succeeded, failed (with the reason) or was skipped because an upstream stage of that cell did not
succeed; the next stage asks `upstream_ok` before it works on the cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from factory_assets.core.clock import utc_now
from factory_assets.core.names import Stage, Table
from factory_assets.core.warehouse import Warehouse

MARKET_WIDE = "__market__"
"""The `model` value of a market-level stage (car_snapshots and Data Checker 1)."""

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class StageOutcome:
    """What one stage did for one cell."""

    market: str
    model: str
    stage: str
    status: Status
    message: str = ""


def record(warehouse: Warehouse, outcome: StageOutcome, run_id: str) -> None:
    """Store the outcome, replacing the previous one for (market, model, stage)."""
    frame = pd.DataFrame(
        [
            {
                "market": outcome.market,
                "model": outcome.model,
                "stage": outcome.stage,
                "status": outcome.status,
                "message": outcome.message,
                "recorded_at": utc_now(),
            }
        ]
    )
    partition = {"market": outcome.market, "model": outcome.model, "stage": outcome.stage}
    warehouse.replace_partition(Table.CELL_STATUS, frame, partition, run_id)


def latest(warehouse: Warehouse, market: str, model: str, stage: str) -> StageOutcome | None:
    """The stored outcome of `stage` for the cell, or None if the stage never ran there."""
    if not warehouse.table_exists(Table.CELL_STATUS):
        return None
    rows = warehouse.query(
        f"select status, message from {Table.CELL_STATUS} where market = ? and model = ? and stage = ?",
        [market, model, stage],
    )
    if rows.empty:
        return None
    return StageOutcome(market, model, stage, rows.iloc[0]["status"], rows.iloc[0]["message"])


def upstream_problem(warehouse: Warehouse, market: str, model: str, stages: list[str]) -> str | None:
    """Why the cell may not proceed (the first upstream stage not 'ok'), or None if it may."""
    with warehouse.session():  # gated once per cell and stage: one connection, not two per stage
        for stage in stages:
            owner = MARKET_WIDE if stage == Stage.DATA_CHECKER_1 else model
            outcome = latest(warehouse, market, owner, stage)
            if outcome is None:
                return f"upstream stage '{stage}' has not run for {market}/{owner}"
            if outcome.status != "ok":
                return f"upstream stage '{stage}' is {outcome.status}: {outcome.message}"
    return None
