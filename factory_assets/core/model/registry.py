"""The model registry: trained models, retrain evaluations, champion decisions, realised performance.

`registry.score_references` holds, per champion made live, the snapshot and hash of its own scores
recorded at its decision (`core.model.score_reference`): Data Checker 2's reference for a new model.

The champion of a cell is the `live_version` of its latest decision in `registry.decisions`, never
the newest file: `current_champion` and `champion_at` read the decisions only. JSON-valued columns
(features, params, metrics, triggers) are stored as JSON text. Tables are created with explicit
types on first use, so a first row full of NULLs cannot fix a wrong column type.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from factory_assets.core.model.calibration import Calibrator
from factory_assets.core.model.metrics import correct_probability
from factory_assets.core.names import Table
from factory_assets.core.warehouse import Warehouse

_LINEAGE = "run_id varchar, _run_id varchar, _written_at timestamp"
_DDL = {
    Table.MODELS: (
        "market varchar, model varchar, model_version varchar, spec_hash varchar, trained_at timestamp, "
        "first_snapshot date, last_snapshot date, test_snapshots varchar, beta double, "
        "cross_sectional boolean, "
        "features varchar, categorical varchar, params varchar, seed integer, best_iteration integer, "
        "metrics varchar, test_auc double, artefact_path varchar, reference_path varchar, "
        "reference_sha256 varchar, evaluation_id varchar, triggers varchar, family varchar, "
        "calibration varchar, family_selection varchar"
    ),
    Table.RETRAIN_EVALUATIONS: (
        "evaluation_id varchar, market varchar, model varchar, evaluated_at timestamp, "
        "champion_version varchar, triggers varchar, fired varchar, outcome varchar, reason varchar, "
        "challenger_version varchar"
    ),
    Table.DECISIONS: (
        "decision_id varchar, market varchar, model varchar, decided_at timestamp, "
        "rule_version varchar, "
        "evaluation_id varchar, triggers varchar, champion_version varchar, challenger_version varchar, "
        "champion_metrics varchar, challenger_metrics varchar, champion_auc double, challenger_auc double, "
        "auc_uplift double, delong_p double, outcome varchar, reason varchar, live_version varchar, "
        "challenger_family varchar, champion_family varchar, family_selection varchar"
    ),
    Table.SCORE_REFERENCES: (
        "market varchar, model varchar, model_version varchar, decision_id varchar, snapshot_date date, "
        "rows bigint, mean_probability double, sha256 varchar, computed_at timestamp"
    ),
    Table.REALISED_PERFORMANCE: (
        "market varchar, model varchar, model_version varchar, snapshot_date date, n bigint, "
        "positives bigint, auc double, lift_top_decile double, computed_at timestamp"
    ),
    Table.DRIFT: (
        "market varchar, model varchar, snapshot_date date, champion_version varchar, status varchar, "
        "reference_rows bigint, rows bigint, drift_share double, psi_threshold double, feature_psi varchar, "
        "drifted_features varchar, report_path varchar, computed_at timestamp"
    ),
}
_KEYS = {
    Table.MODELS: ("market", "model", "model_version"),
    Table.RETRAIN_EVALUATIONS: ("evaluation_id",),
    Table.DECISIONS: ("decision_id",),
    Table.SCORE_REFERENCES: ("market", "model", "model_version"),
    Table.REALISED_PERFORMANCE: ("market", "model", "model_version", "snapshot_date"),
    Table.DRIFT: ("market", "model"),
}


def to_json(value: object) -> str:
    """Stable JSON text for a JSON-valued column."""
    return json.dumps(value, sort_keys=True, default=str)


def write(warehouse: Warehouse, table: str, row: Mapping[str, Any], run_id: str) -> None:
    """Replace the row of `table` with the same key (see `_KEYS`) by `row`, in one transaction."""
    schema = table.split(".")[0]
    # columns added since a table was created (e.g. `family`) are added to it, empty for older rows
    added = "; ".join(f"alter table {table} add column if not exists {column}" for column in _columns(table))
    warehouse.execute(
        lambda con: con.execute(
            f"create schema if not exists {schema}; "
            f"create table if not exists {table} ({_DDL[table]}, {_LINEAGE}); {added}"
        )
    )
    frame = pd.DataFrame([{**row, "run_id": run_id}])
    warehouse.replace_partition(table, frame, {k: row[k] for k in _KEYS[table]}, run_id)


def _columns(table: str) -> list[str]:
    """The `name type` definitions of `table`'s columns in `_DDL`."""
    return [c.strip() for c in _DDL[table].split(",")]


def read(warehouse: Warehouse, table: str, where: str, params: list[Any], order: str = "") -> pd.DataFrame:
    """Rows of a registry table (empty when the table does not exist yet)."""
    if not warehouse.table_exists(table):
        return pd.DataFrame()
    order_by = f" order by {order}" if order else ""
    return warehouse.query(f"select * from {table} where {where}{order_by}", params)


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: what scoring, drift and the rules need to use it."""

    version: str
    market: str
    model: str
    trained_at: dt.datetime
    last_snapshot: dt.date
    beta: float
    features: list[str]
    categorical: list[str]
    metrics: dict[str, Any]
    reference_sha256: str
    family: str = "catboost"
    calibrator: Calibrator = field(default_factory=Calibrator)
    """Maps the beta-corrected probability to the calibrated natural one (identity before calibration)."""
    family_selection: dict[str, Any] = field(default_factory=dict)
    """Every family's validation and test metrics at training, the winner and why it won."""

    @property
    def test_auc(self) -> float:
        """AUC on its own out-of-time test."""
        return float(self.metrics["auc"])

    def natural_probability(self, raw_score: np.ndarray) -> np.ndarray:
        """The released probability of sample-scale scores: beta-corrected, then calibrated."""
        return self.calibrator.apply(correct_probability(raw_score, self.beta))


def model_record(warehouse: Warehouse, market: str, model: str, version: str) -> ModelRecord:
    """The registry entry of `version` for the cell; fails naming the cell when it is absent."""
    rows = read(
        warehouse, Table.MODELS, "market = ? and model = ? and model_version = ?", [market, model, version]
    )
    if rows.empty:
        raise LookupError(f"model {version} of {market}/{model} is not in {Table.MODELS}")
    row = rows.iloc[0]
    return ModelRecord(
        version=version,
        market=market,
        model=model,
        trained_at=pd.Timestamp(row["trained_at"]).to_pydatetime(),
        last_snapshot=pd.Timestamp(row["last_snapshot"]).date(),
        beta=float(row["beta"]),
        features=json.loads(row["features"]),
        categorical=json.loads(row["categorical"]),
        metrics=json.loads(row["metrics"]),
        reference_sha256=str(row["reference_sha256"]),
        family=str(row["family"]) if isinstance(row.get("family"), str) else "catboost",
        calibrator=Calibrator.from_dict(
            json.loads(row["calibration"]) if isinstance(row.get("calibration"), str) else None
        ),
        family_selection=_json_or_empty(row.get("family_selection")),
    )


def _json_or_empty(value: object) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else {}


@dataclass(frozen=True)
class ChampionPointer:
    """The live champion of a cell and the decision that made it live."""

    version: str
    decision_id: str
    decided_at: dt.datetime


def _latest_decision(warehouse: Warehouse, market: str, model: str, when: dt.datetime | None) -> pd.DataFrame:
    where, params = "market = ? and model = ?", [market, model]
    if when is not None:
        where, params = where + " and decided_at <= ?", [*params, when]
    rows = read(warehouse, Table.DECISIONS, where, params, order="decided_at desc, decision_id desc")
    return rows.head(1)


def current_champion(warehouse: Warehouse, market: str, model: str) -> ChampionPointer | None:
    """The live champion (from the latest decision), or None before the first promotion."""
    rows = _latest_decision(warehouse, market, model, None)
    if rows.empty or pd.isna(rows.iloc[0]["live_version"]):
        return None
    row = rows.iloc[0]
    return ChampionPointer(
        row["live_version"], row["decision_id"], pd.Timestamp(row["decided_at"]).to_pydatetime()
    )


def champion_at(warehouse: Warehouse, market: str, model: str, when: dt.datetime) -> str | None:
    """The champion version live at `when` (naive UTC), from the decisions; None before the first."""
    rows = _latest_decision(warehouse, market, model, when)
    if rows.empty or pd.isna(rows.iloc[0]["live_version"]):
        return None
    return str(rows.iloc[0]["live_version"])


def decisions(warehouse: Warehouse, market: str, model: str) -> pd.DataFrame:
    """Every decision of the cell, oldest first (the champion history)."""
    return read(
        warehouse, Table.DECISIONS, "market = ? and model = ?", [market, model], "decided_at, decision_id"
    )


def latest_evaluation(warehouse: Warehouse, market: str, model: str) -> dict[str, Any] | None:
    """The latest retrain evaluation of the cell, or None."""
    rows = read(
        warehouse, Table.RETRAIN_EVALUATIONS, "market = ? and model = ?", [market, model], "evaluated_at desc"
    )
    return None if rows.empty else rows.iloc[0].to_dict()


def is_decided(warehouse: Warehouse, evaluation_id: str) -> bool:
    """True when a decision was already taken on the challenger of `evaluation_id`."""
    return not read(warehouse, Table.DECISIONS, "evaluation_id = ?", [evaluation_id]).empty


def latest_realised_auc(warehouse: Warehouse, market: str, model: str, version: str) -> float | None:
    """The realised AUC of `version` on its latest labelled scored snapshot, or None."""
    rows = read(
        warehouse,
        Table.REALISED_PERFORMANCE,
        "market = ? and model = ? and model_version = ?",
        [market, model, version],
        order="snapshot_date desc",
    )
    return None if rows.empty else float(rows.iloc[0]["auc"])


def drift_row(warehouse: Warehouse, market: str, model: str) -> dict[str, Any] | None:
    """The cell's latest drift measurement, or None."""
    rows = read(warehouse, Table.DRIFT, "market = ? and model = ?", [market, model])
    return None if rows.empty else rows.iloc[0].to_dict()
