"""A new champion's own scores, recorded at its decision: the snapshot before the latest, hashed, findable."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier
from support.model_synthetic import CATEGORICAL, feature_names, month_ends, synthetic_frame
from support.prep_frames import write_cell_frame

from factory_assets.core.model.registry import ModelRecord
from factory_assets.core.model.score_reference import (
    find_score_reference,
    load_score_reference,
    record_score_reference,
    reference_snapshot,
)
from factory_assets.core.model.store import ModelStore, ModelStoreError
from factory_assets.core.model.training import predict_sample_scale
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse

MARKET, MODEL = "uk", "churn"
SNAPSHOTS = month_ends(dt.date(2024, 1, 1), 4)


@pytest.fixture
def decided(paths: FactoryPaths, warehouse: Warehouse) -> tuple[StageContext, ModelRecord]:
    """A cell's training frame in the warehouse and a small champion in the model store."""
    frame = synthetic_frame(300, SNAPSHOTS, seed=5)
    write_cell_frame(warehouse, MARKET, MODEL, frame, "t")
    features = feature_names(frame)
    labelled = frame.dropna(subset=["target"])
    model = CatBoostClassifier(iterations=20, depth=3, random_seed=1, thread_count=1, verbose=False)
    x = labelled[features].assign(**{c: labelled[c].fillna("__missing__").astype(str) for c in CATEGORICAL})
    model.fit(x, labelled["target"].astype(int), cat_features=CATEGORICAL)
    version = ModelStore(paths.models).save(model)
    record = ModelRecord(
        version, MARKET, MODEL, dt.datetime(2024, 5, 1), SNAPSHOTS[-2], 0.5, features, CATEGORICAL, {}, ""
    )
    ctx = StageContext(warehouse, paths.models, paths.reports, paths.releases, run_id="t")
    return ctx, record


def test_the_reference_is_the_new_champions_natural_probabilities_on_the_snapshot_before_the_latest(decided):
    ctx, record = decided

    reference = record_score_reference(ctx, MARKET, MODEL, record, "decision-1")

    assert reference_snapshot(ctx, MARKET, MODEL) == SNAPSHOTS[-2] == reference.snapshot_date
    assert find_score_reference(ctx.warehouse, MARKET, MODEL, record.version) == reference
    frame = load_score_reference(ModelStore(ctx.models_dir), reference)
    assert len(frame) == reference.rows == 300
    assert list(frame.columns) == ["customer_id", "probability"]
    population = synthetic_frame(300, SNAPSHOTS, seed=5)
    population = population[population["snapshot_date"] == SNAPSHOTS[-2]]
    model = ModelStore(ctx.models_dir).load(record.version)
    raw = predict_sample_scale(model, population, record.features, record.categorical)
    expected = 0.5 * raw / (0.5 * raw - raw + 1)  # corrected for the sampling ratio beta = 0.5
    assert np.allclose(frame["probability"].to_numpy(), expected)
    assert reference.mean_probability == pytest.approx(float(np.mean(expected)))


def test_a_tampered_reference_file_is_refused_and_an_unknown_version_has_none(decided):
    ctx, record = decided
    reference = record_score_reference(ctx, MARKET, MODEL, record, "decision-1")
    path = ModelStore(ctx.models_dir).score_reference_path(record.version, reference.snapshot_date)
    pd.DataFrame({"customer_id": ["x"], "probability": [0.5]}).to_parquet(path)

    with pytest.raises(ModelStoreError, match="corrupt"):
        load_score_reference(ModelStore(ctx.models_dir), reference)
    assert find_score_reference(ctx.warehouse, MARKET, MODEL, "f" * 64) is None
