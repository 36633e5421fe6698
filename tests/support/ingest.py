"""Write hand-made CAR snapshots into a warehouse exactly as the ingest does (contract validation)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from factory_assets.core.car.ingest import SnapshotInput, prepare_snapshot, write_snapshot
from factory_assets.core.contract import CarContract, load_contract
from factory_assets.core.warehouse import Warehouse


def ingest_frames(
    warehouse: Warehouse,
    market: str,
    frames: Iterable[pd.DataFrame],
    run_id: str = "run",
    contract: CarContract | None = None,
) -> None:
    """Validate and write each snapshot (its date from its rows) as `car_snapshots` would."""
    contract = contract or load_contract()
    for frame in frames:
        day = pd.Timestamp(frame["snapshot_date"].iloc[0]).date()
        item = SnapshotInput(market, day, f"{market}/car_{day}.parquet", lambda: "", lambda f=frame: f)
        write_snapshot(warehouse, market, prepare_snapshot(frame, contract, item), day, run_id)
