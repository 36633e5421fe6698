"""What Data Checker 1 recorded about the scored snapshot, read where the champion is known.

The car stage checks a snapshot without knowing the champions (the core imports one way: car before
model), so its extreme shifts (`extreme_psi`) are a warning in the snapshot's verdict; here, with the
champion's features at hand, they become a per-cell decision (`score_checks.check_features_sound`).
The verdict also goes into the scoring report, and an accepted restatement into the release record.
"""

from __future__ import annotations

import datetime as dt
import json

from factory_assets.core.car.verdicts import AdmittedVerdict, admitted_verdict
from factory_assets.core.model import registry
from factory_assets.core.names import Table
from factory_assets.core.release.score_checks import SnapshotShift
from factory_assets.core.warehouse import Warehouse

UNRECORDED = "unrecorded"
"""The verdict of a snapshot admitted before verdicts were stored (it passed the market-wide gate)."""


def champion_features(
    warehouse: Warehouse, market: str, model: str, version: str | None
) -> tuple[str, ...] | None:
    """The features `version` reads, from its registry row (None when the row or its features are missing)."""
    if version is None:
        return None
    rows = registry.read(
        warehouse, Table.MODELS, "market = ? and model = ? and model_version = ?", [market, model, version]
    )
    value = None if rows.empty or "features" not in rows.columns else rows.iloc[0]["features"]
    return tuple(json.loads(value)) if isinstance(value, str) else None


def snapshot_shift(
    warehouse: Warehouse, market: str, model: str, snapshot: dt.date | None, version: str | None
) -> SnapshotShift:
    """The scored snapshot's verdict and extreme shifts, with the features of the champion that scored it."""
    found = admitted_verdict(warehouse, market, snapshot) if snapshot is not None else None
    features = champion_features(warehouse, market, model, version)
    if found is None:
        return SnapshotShift(snapshot, UNRECORDED, model_version=version, features=features)
    shift = found.extreme
    return SnapshotShift(
        snapshot, found.verdict, shift.columns, shift.block_psi, shift.previous, version, features
    )


def verdict_report(warehouse: Warehouse, market: str, snapshot: dt.date) -> dict[str, object]:
    """The scored snapshot's Data Checker 1 verdict for a stage report, with the reasons of a warning."""
    found: AdmittedVerdict | None = admitted_verdict(warehouse, market, snapshot)
    if found is None:
        return {"snapshot_verdict": UNRECORDED}
    report: dict[str, object] = {"snapshot_verdict": found.verdict}
    if found.reasons:
        report["snapshot_verdict_reasons"] = "; ".join(found.reasons)
    return report


def accepted_restatement(warehouse: Warehouse, market: str, snapshot: dt.date | None) -> str | None:
    """The accepted restatement the released snapshot's version is (None: a first delivery, or close)."""
    found = admitted_verdict(warehouse, market, snapshot) if snapshot is not None else None
    return None if found is None else found.accepted_restatement
