"""CatBoost challengers on a seeded synthetic sample: quality, determinism, failures, the model store."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.model_synthetic import month_ends, synthetic_frame, synthetic_samples

from factory_assets.core.model import metrics
from factory_assets.core.model.store import ModelStore, ModelStoreError
from factory_assets.core.model.training import (
    TrainingDataError,
    fit_challenger,
    model_frame,
    population_reference,
    predict_sample_scale,
    split_frame,
)
from factory_assets.core.specs import ModelParams

PARAMS = ModelParams(iterations=120, early_stopping_rounds=20, thread_count=2, seed=7)


@pytest.fixture(scope="module")
def samples():
    frame = synthetic_frame(2000, month_ends(dt.date(2025, 1, 1), 6), seed=3)
    return synthetic_samples(frame, seed=3)


@pytest.fixture(scope="module")
def trained(samples):
    return fit_challenger(samples, PARAMS, "m1/churn")


def test_challenger_learns_the_signal_out_of_time(samples, trained):
    test = split_frame(samples, "test")
    scores = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
    result = metrics.evaluate(test["target"].to_numpy(), scores, samples.beta)
    assert result["auc"] > 0.68, f"test AUC {result['auc']:.3f} too low for a frame with strong signal"
    assert result["lift_top_decile"] > 2.0
    assert result["mean_predicted"] == pytest.approx(result["base_rate"], rel=0.25), "beta correction off"
    assert trained.params["random_seed"] == 7
    assert trained.params["thread_count"] == 2
    assert 0 < trained.best_iteration < PARAMS.iterations, "early stopping on validation did not act"


def test_same_data_and_seed_give_the_same_model_hash(tmp_path, samples, trained):
    store = ModelStore(tmp_path / "models")
    first = store.save(trained.model)
    second = store.save(fit_challenger(samples, PARAMS, "m1/churn").model)
    other_seed = store.save(fit_challenger(samples, PARAMS.model_copy(update={"seed": 8}), "m1/churn").model)
    assert first == second, "same data and seed must give the same content hash"
    assert other_seed != first
    assert len(first) == 64
    assert store.artefact_path(first).is_file()


def test_store_round_trip_predicts_the_same(tmp_path, samples, trained):
    store = ModelStore(tmp_path / "models")
    version = store.save(trained.model)
    test = split_frame(samples, "test")
    before = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
    after = predict_sample_scale(store.load(version), test, trained.features, trained.categorical)
    np.testing.assert_allclose(before, after)


def test_missing_artefact_fails_clearly(tmp_path):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelStoreError, match=r"model artefact .*abc\.cbm for version abc is missing"):
        store.load("abc")


def test_corrupt_artefact_fails_clearly(tmp_path, trained):
    store = ModelStore(tmp_path / "models")
    version = store.save(trained.model)
    with store.artefact_path(version).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelStoreError, match=f"{version}.cbm is corrupt"):
        store.load(version)


def test_single_class_sample_fails_naming_cell_and_split(samples):
    frame = samples.frame.copy()
    frame.loc[frame["split"] == "validation", "target"] = 0
    broken = dataclasses.replace(samples, frame=frame)
    with pytest.raises(
        TrainingDataError, match=r"m1/addon_kids: the validation split holds only class \[0\]"
    ):
        fit_challenger(broken, PARAMS, "m1/addon_kids")


def test_empty_split_fails(samples):
    broken = dataclasses.replace(samples, frame=samples.frame[samples.frame["split"] != "test"])
    with pytest.raises(TrainingDataError, match="the test split holds no rows"):
        fit_challenger(broken, PARAMS, "m1/churn")


def test_categoricals_become_string_categories_with_a_sentinel(samples):
    frame = model_frame(samples.frame.head(200), samples.features, samples.categorical)
    assert isinstance(frame["region"].dtype, pd.CategoricalDtype)
    assert all(isinstance(level, str) for level in frame["region"].cat.categories)
    assert frame["region"].notna().all()
    assert (frame["region"] == "__missing__").any(), "synthetic region has missing values"
    assert frame["age"].dtype == float
    assert frame["age"].isna().any()


def test_population_reference_is_a_seeded_sample_of_the_scoring_population():
    population = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(500)],
            "snapshot_date": dt.date(2025, 1, 1),
            "target": pd.array([None] * 500, dtype="Int64"),
            "x": np.arange(500.0),
            "unused": 1,
        }
    )
    first = population_reference(population, ["x"], seed=1, rows=100)
    assert first.equals(population_reference(population, ["x"], seed=1, rows=100))
    assert list(first.columns) == ["snapshot_date", "x"]
    assert len(first) == 100
    assert first["x"].is_unique
    assert len(population_reference(population, ["x"], seed=1, rows=1000)) == 500
    with pytest.raises(ValueError, match="population is empty"):
        population_reference(population.head(0), ["x"], seed=1)
