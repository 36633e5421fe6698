"""The stored Data Checker 1 verdict of a snapshot held in `car.<market>`: what later stages read of it.

One row of `ops.car_snapshot_verdicts` per market, snapshot and content hash (`admit.SnapshotVerdict`);
the version held in the CAR is the latest admitted one. Scoring reports its verdict, the release gate
reads its extreme shifts (`extreme_psi`, a JSON column added with per-cell blocking: rows written
before it read as none) and the release record names an accepted restatement.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pandas as pd

from factory_assets.core.car.profile import query_if_exists
from factory_assets.core.names import Table
from factory_assets.core.warehouse import Warehouse

EXTREME_COLUMN = "extreme_psi"
"""The verdict column holding the snapshot's extreme shifts (JSON: columns, block_psi, previous)."""


@dataclass(frozen=True)
class ExtremeShift:
    """Feature columns whose PSI vs the previous snapshot reached `block_psi` (none: an empty mapping)."""

    columns: dict[str, float] = field(default_factory=dict)
    block_psi: float | None = None
    previous: str | None = None

    def as_json(self) -> str | None:
        """The stored form (None when nothing shifted extremely)."""
        if not self.columns:
            return None
        return json.dumps({"columns": self.columns, "block_psi": self.block_psi, "previous": self.previous})

    @classmethod
    def from_json(cls, value: object) -> ExtremeShift:
        """The stored form back; a missing value (a row written before the column) is no shift."""
        if not isinstance(value, str) or not value:
            return cls()
        data = json.loads(value)
        columns = {str(c): float(v) for c, v in dict(data.get("columns") or {}).items()}
        return cls(columns, data.get("block_psi"), data.get("previous"))


@dataclass(frozen=True)
class AdmittedVerdict:
    """The verdict of the version of a snapshot held in `car.<market>`, as Data Checker 1 stored it."""

    market: str
    snapshot_date: dt.date
    verdict: str
    reasons: list[str]
    restatement: str
    content_hash: str
    source_file: str
    recorded_at: str
    extreme: ExtremeShift

    @property
    def accepted_restatement(self) -> str | None:
        """The accepted restatement this version is, named for a release record; None otherwise."""
        if self.restatement != "accepted":
            return None
        return (
            f"accepted restatement of {self.snapshot_date}: {self.source_file} (content "
            f"{self.content_hash[:12]}), verdict recorded {self.recorded_at} in {Table.CAR_VERDICTS}"
        )


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def admitted_verdict(warehouse: Warehouse, market: str, day: dt.date) -> AdmittedVerdict | None:
    """The verdict of the admitted version of `day` (None: no verdict recorded, e.g. older data)."""
    rows = query_if_exists(
        warehouse,
        Table.CAR_VERDICTS,
        f"select * from {Table.CAR_VERDICTS} where market = ? and snapshot_date = ? and admitted "
        "order by _written_at desc limit 1",
        [market, day],
    )
    if rows is None or rows.empty:
        return None
    row = rows.iloc[0].to_dict()
    reasons = _text(row.get("reasons"))
    return AdmittedVerdict(
        market=market,
        snapshot_date=day,
        verdict=_text(row.get("verdict")),
        reasons=[str(r) for r in json.loads(reasons)] if reasons else [],
        restatement=_text(row.get("restatement")),
        content_hash=_text(row.get("content_hash")),
        source_file=_text(row.get("source_file")),
        recorded_at=str(pd.Timestamp(row["_written_at"])) if pd.notna(row.get("_written_at")) else "",
        extreme=ExtremeShift.from_json(row.get(EXTREME_COLUMN)),
    )
