"""What a model card shows, read from the stages' records: the warehouse, the model and release stores.

One read per source; a source a stage has not written yet reads as empty, so a card can be drawn
for any cell with a release (and says what it lacks). Nothing here renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factory_assets.core.model.store import ModelStore, ModelStoreError
from factory_assets.core.names import Table
from factory_assets.core.release.store import ReleaseManifest, ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

TOP_FEATURES = 15


@dataclass(frozen=True)
class CardData:
    """Everything one cell's model card shows."""

    market: str
    model: str
    spec: ModelSpec
    manifest: ReleaseManifest | None
    model_row: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    variables: pd.DataFrame = field(default_factory=pd.DataFrame)
    realised: pd.DataFrame = field(default_factory=pd.DataFrame)
    drift: dict[str, Any] = field(default_factory=dict)
    drift_report: Path | None = None
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: list[tuple[str, float]] = field(default_factory=list)
    importance_note: str = ""
    """Why no importance is shown (e.g. the artefact is missing), else empty."""
    current_scores: np.ndarray | None = None
    previous_scores: np.ndarray | None = None
    previous_release: str | None = None


def _rows(warehouse: Warehouse, table: str, sql: str, params: list[object]) -> pd.DataFrame:
    return warehouse.query(sql, params) if warehouse.table_exists(table) else pd.DataFrame()


def _json(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) and value else None


def model_row(warehouse: Warehouse, market: str, model: str, version: str | None) -> dict[str, Any]:
    """The registry's row of `version` (empty when unknown)."""
    sql = f"select * from {Table.MODELS} where market = ? and model = ? and model_version = ?"
    rows = _rows(warehouse, Table.MODELS, sql, [market, model, version])
    return rows.iloc[-1].to_dict() if len(rows) else {}


def feature_importance(models: ModelStore, version: str, features: list[str]) -> list[tuple[str, float]]:
    """The model's features by importance, largest first (CatBoost's, or |coefficient| of a linear model)."""
    estimator = models.load(version)
    if hasattr(estimator, "get_feature_importance"):
        values, names = estimator.get_feature_importance(), list(estimator.feature_names_)
    elif hasattr(estimator, "coef_"):
        values, names = np.abs(np.ravel(estimator.coef_)), features
    else:
        return []
    ranked = sorted(zip(names, map(float, values), strict=False), key=lambda item: -item[1])
    return ranked[:TOP_FEATURES]


def _importance(models: ModelStore, row: dict[str, Any]) -> tuple[list[tuple[str, float]], str]:
    """The importance of the row's model, or why there is none (the card still shows the rest)."""
    if not row:
        return [], "the release's model version is not in the registry"
    try:
        return feature_importance(models, str(row["model_version"]), _json(row.get("features")) or []), ""
    except ModelStoreError as exc:  # a card must still be drawn, saying what it cannot show
        return [], str(exc)


def _previous_manifest(store: ReleaseStore, manifest: ReleaseManifest) -> ReleaseManifest | None:
    folder = store.cell_dir(manifest.market, manifest.model)
    kept = [
        ReleaseManifest.from_json(p.read_text(encoding="utf-8"), p) for p in folder.glob("*.manifest.json")
    ]
    earlier = [
        m for m in kept if m.released_at < manifest.released_at and m.release_id != manifest.release_id
    ]
    return max(earlier, key=lambda m: m.released_at) if earlier else None


def _probabilities(store: ReleaseStore, manifest: ReleaseManifest | None) -> np.ndarray | None:
    if manifest is None:
        return None
    return store.load_reference(manifest)["probability"].to_numpy(dtype=float)


def _drift(warehouse: Warehouse, market: str, model: str) -> dict[str, Any]:
    sql = f"select * from {Table.DRIFT} where market = ? and model = ?"
    rows = _rows(warehouse, Table.DRIFT, sql, [market, model])
    return rows.iloc[-1].to_dict() if len(rows) else {}


def read_card_data(
    warehouse: Warehouse, store: ReleaseStore, models: ModelStore, spec: ModelSpec, market: str
) -> CardData:
    """Everything the card of `market` x `spec.name` shows, for its release in force."""
    model = spec.name
    manifest = store.read_manifest(market, model)
    version = manifest.model_version if manifest else None
    row = model_row(warehouse, market, model, version)
    cell = [market, model]
    drift = _drift(warehouse, market, model)
    previous = _previous_manifest(store, manifest) if manifest else None
    report = drift.get("report_path")
    importance, importance_note = _importance(models, row)
    return CardData(
        market=market,
        model=model,
        spec=spec,
        manifest=manifest,
        model_row=row,
        metrics=_json(row.get("metrics")) or {},
        variables=_rows(
            warehouse,
            Table.VARIABLE_DECISIONS,
            f"select variable, rule, measured, threshold, decision, reason from {Table.VARIABLE_DECISIONS} "
            "where market = ? and model = ? order by decision, variable",
            cell,
        ),
        realised=_rows(
            warehouse,
            Table.REALISED_PERFORMANCE,
            f"select snapshot_date, model_version, n, positives, auc from {Table.REALISED_PERFORMANCE} "
            "where market = ? and model = ? order by snapshot_date",
            cell,
        ),
        drift=drift,
        drift_report=Path(report) if isinstance(report, str) and Path(report).is_file() else None,
        decisions=_rows(
            warehouse,
            Table.DECISIONS,
            "select decided_at, outcome, reason, live_version, champion_auc, challenger_auc "
            f"from {Table.DECISIONS} where market = ? and model = ? order by decided_at desc",
            cell,
        ),
        importance=importance,
        importance_note=importance_note,
        current_scores=_probabilities(store, manifest),
        previous_scores=_probabilities(store, previous),
        previous_release=previous.release_id if previous else None,
    )
