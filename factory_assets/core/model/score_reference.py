"""A new champion's own scores, recorded when a decision makes it live: Data Checker 2's reference.

A new model gives a different score distribution by design, so comparing its first release with the
previous champion's release cannot tell a model change from a broken feed. When a decision promotes
or replaces, the new champion therefore scores the eligible population of the training frame's
snapshot just *before* the scoring snapshot (the one the next release scores), and the scores
(customer_id, natural probability) are stored in the model store, their snapshot and hash in
`registry.score_references`. The next release of the cell compares its scores with these: the same
model on consecutive populations, as for an unchanged champion. Why the previous snapshot and not
the out-of-time test: the test rows are a down-sampled, labelled subset `horizon` months old, while
the previous snapshot is the whole eligible population one step before the scored one
(docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from factory_assets.core.model import registry
from factory_assets.core.model.registry import ModelRecord
from factory_assets.core.model.store import ModelStore
from factory_assets.core.model.training import predict_sample_scale
from factory_assets.core.names import Table
from factory_assets.core.prep import prepared
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse


@dataclass(frozen=True)
class ScoreReference:
    """Where a champion's own scores were recorded: its version, the snapshot and the file's hash."""

    market: str
    model: str
    version: str
    decision_id: str
    snapshot_date: dt.date
    rows: int
    mean_probability: float
    sha256: str


def reference_snapshot(ctx: StageContext, market: str, model: str) -> dt.date:
    """The training frame's snapshot just before the scoring snapshot (that one if none is earlier)."""
    latest = prepared.latest_snapshot(ctx.warehouse, market, model)
    return prepared.previous_snapshot(ctx.warehouse, market, model, latest) or latest


def record_score_reference(
    ctx: StageContext, market: str, model: str, record: ModelRecord, decision_id: str
) -> ScoreReference:
    """Score the reference snapshot with `record`, store the scores and register where they are."""
    snapshot = reference_snapshot(ctx, market, model)
    population = prepared.load_population(ctx.warehouse, market, model, record.features, snapshot)
    store = ModelStore(ctx.models_dir)
    with ctx.warehouse.released():  # a whole population's prediction: hold no connection
        raw = predict_sample_scale(
            store.load(record.version), population, record.features, record.categorical
        )
    frame = pd.DataFrame(
        {
            "customer_id": population["customer_id"].to_numpy(),
            "probability": record.natural_probability(raw).astype("float64"),
        }
    )
    _, sha = store.save_score_reference(record.version, snapshot, frame)
    reference = ScoreReference(
        market,
        model,
        record.version,
        decision_id,
        snapshot,
        len(frame),
        float(frame["probability"].mean()),
        sha,
    )
    registry.write(
        ctx.warehouse,
        Table.SCORE_REFERENCES,
        {
            "market": market,
            "model": model,
            "model_version": record.version,
            "decision_id": decision_id,
            "snapshot_date": snapshot,
            "rows": reference.rows,
            "mean_probability": reference.mean_probability,
            "sha256": sha,
            "computed_at": ctx.now,
        },
        ctx.run_id,
    )
    return reference


def find_score_reference(
    warehouse: Warehouse, market: str, model: str, version: str
) -> ScoreReference | None:
    """The score reference recorded when `version` was made champion of the cell, or None."""
    rows = registry.read(
        warehouse,
        Table.SCORE_REFERENCES,
        "market = ? and model = ? and model_version = ?",
        [market, model, version],
    )
    if rows.empty:
        return None
    row = rows.iloc[0]
    return ScoreReference(
        market=market,
        model=model,
        version=version,
        decision_id=str(row["decision_id"]),
        snapshot_date=pd.Timestamp(row["snapshot_date"]).date(),
        rows=int(row["rows"]),
        mean_probability=float(row["mean_probability"]),
        sha256=str(row["sha256"]),
    )


def load_score_reference(store: ModelStore, reference: ScoreReference) -> pd.DataFrame:
    """customer_id and probability of a score reference, verified against its recorded hash."""
    return store.load_score_reference(reference.version, reference.snapshot_date, reference.sha256)
