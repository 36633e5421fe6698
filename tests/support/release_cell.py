"""A hand-built release cell for the Data Checker 2 and operator-action tests (issue 20).

The market's CAR, the registry rows (models, decisions, score references) and the cell's scores are
written as the upstream stages leave them, so a test drives a cell month by month with `month`
(ingest the snapshot, score it, `release_cell`). Two champions: v1 (test rate 0.1) and v2 (0.2),
with differently shaped score distributions.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from factory_assets.core.model import registry
from factory_assets.core.model.store import ModelStore
from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.gate import ReleaseOutcome, release_cell
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse

MARKET, MODEL = "uk", "churn"
N = 3000
JUNE, JULY, AUGUST, SEPTEMBER = (dt.date(2024, m, 1) for m in (6, 7, 8, 9))
SPEC = ModelSpec.model_validate(
    {"name": MODEL, "target": {"kind": "movement", "product": "tier", "from": ["basic"], "to": ["churned"]}}
)
IDS = np.array([f"c{i:05d}" for i in range(N)])


def probabilities(seed: int, a: float, b: float) -> np.ndarray:
    """A model's natural probabilities on one population (beta-distributed, seeded)."""
    return np.random.default_rng(seed).beta(a, b, N)


V1 = {"version": "v1" + "0" * 62, "rate": 0.1, "shape": (2.0, 18.0)}
V2 = {"version": "v2" + "0" * 62, "rate": 0.2, "shape": (3.0, 12.0)}


def new_cell(paths: FactoryPaths, warehouse: Warehouse) -> StageContext:
    """The registry rows of both champions (v1 promoted in May); nothing scored yet."""
    for model in (V1, V2):
        row = {
            "market": MARKET,
            "model": MODEL,
            "model_version": model["version"],
            "metrics": json.dumps({"auc": 0.75, "test_base_rate": model["rate"]}),
        }
        registry.write(warehouse, Table.MODELS, row, "t")
    decide(warehouse, "d1", V1, dt.datetime(2024, 5, 2))
    return StageContext(warehouse, paths.models, paths.reports, paths.releases, run_id="t")


def decide(warehouse: Warehouse, decision_id: str, model: dict, at: dt.datetime) -> None:
    row = {"decision_id": decision_id, "market": MARKET, "model": MODEL, "decided_at": at}
    registry.write(
        warehouse, Table.DECISIONS, {**row, "outcome": "replace", "live_version": model["version"]}, "t"
    )


def ingest(warehouse: Warehouse, snapshot: dt.date) -> None:
    """The market's CAR gains `snapshot` (only the key columns matter to the gate)."""
    car = pd.DataFrame({"customer_id": IDS, "snapshot_date": snapshot})
    warehouse.replace_partition(f"car.{MARKET}", car, {"snapshot_date": snapshot}, "t")


def score(warehouse: Warehouse, snapshot: dt.date, model: dict, probability: np.ndarray) -> None:
    """`scores.scores` of the cell as the scoring stage writes it."""
    rank = probability.argsort().argsort() + 1
    frame = pd.DataFrame(
        {
            "customer_id": IDS,
            "snapshot_date": snapshot,
            "probability": probability,
            "percentile": 100.0 * rank / N,
            "decile": 10 - (rank - 1) * 10 // N,
            "model_version": model["version"],
            "eligible_rows": N,
        }
    )
    warehouse.replace_partition(Table.SCORES, frame, {"market": MARKET, "model": MODEL}, "t")


def record_own_reference(ctx: StageContext, model: dict, snapshot: dt.date, probability: np.ndarray) -> None:
    """What `record_score_reference` leaves when a decision makes `model` champion."""
    frame = pd.DataFrame({"customer_id": IDS, "probability": probability})
    _, sha = ModelStore(ctx.models_dir).save_score_reference(model["version"], snapshot, frame)
    row = {
        "market": MARKET,
        "model": MODEL,
        "model_version": model["version"],
        "decision_id": "d2",
        "snapshot_date": snapshot,
        "rows": N,
        "mean_probability": float(probability.mean()),
        "sha256": sha,
    }
    registry.write(ctx.warehouse, Table.SCORE_REFERENCES, row, "t")


def month(ctx: StageContext, snapshot: dt.date, model: dict, probability: np.ndarray) -> ReleaseOutcome:
    """One month of the cell: the snapshot is ingested, scored with `model`, and the release runs."""
    ingest(ctx.warehouse, snapshot)
    score(ctx.warehouse, snapshot, model, probability)
    return release_cell(ctx, SPEC, MARKET)
