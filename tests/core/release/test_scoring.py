"""Scoring: percentile ranks with ties, deciles, beta-corrected probabilities, lineage, realised AUC."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.model_synthetic import month_ends, synthetic_frame, synthetic_samples

from factory_assets.core.model.registry import ChampionPointer, ModelRecord
from factory_assets.core.model.training import fit_challenger
from factory_assets.core.release.scoring import percentile_ranks, realised, score_population
from factory_assets.core.specs import ModelParams


def test_ties_are_broken_by_customer_id():
    raw = np.array([0.5, 0.5, 0.9, 0.1])
    ids = np.array(["b", "a", "c", "d"])
    percentile, decile = percentile_ranks(raw, ids)
    # ascending (raw, customer_id): d, a, b, c -> 25, 50, 75, 100
    np.testing.assert_allclose(percentile, [75.0, 50.0, 100.0, 25.0])
    assert decile.tolist() == [3, 6, 1, 8]  # decile = 11 - ceil(percentile / 10)


def test_ranks_do_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    raw = np.round(rng.random(1000), 2)  # many ties
    ids = np.array([f"c{i:04d}" for i in range(1000)])
    order = rng.permutation(1000)
    first, _ = percentile_ranks(raw, ids)
    shuffled, _ = percentile_ranks(raw[order], ids[order])
    np.testing.assert_allclose(first[order], shuffled)
    assert len(np.unique(first)) == 1000, "every customer gets a distinct rank"


def test_deciles_are_equal_sized_and_decile_one_is_the_top():
    raw = np.linspace(0, 1, 1000)
    _, decile = percentile_ranks(raw, np.array([f"c{i:04d}" for i in range(1000)]))
    assert np.bincount(decile)[1:].tolist() == [100] * 10
    assert decile[-1] == 1
    assert decile[0] == 10


def test_realised_performance_known_answer():
    target = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    result = realised(target, np.linspace(1, 0, 10))
    assert result == {"n": 10, "positives": 1, "auc": 1.0, "lift_top_decile": pytest.approx(10.0)}
    assert realised(np.zeros(5), np.arange(5.0)) is None, "a single class has no AUC"


def test_score_population_rows_lineage_and_probabilities():
    frame = synthetic_frame(1500, month_ends(dt.date(2025, 1, 1), 5), seed=5)
    samples = synthetic_samples(frame, seed=5, negatives_per_positive=1.0)
    trained = fit_challenger(samples, ModelParams(iterations=60, early_stopping_rounds=10), "m1/churn")
    record = ModelRecord(
        "v" * 64,
        "m1",
        "churn",
        dt.datetime(2025, 6, 1),
        samples.last_snapshot,
        samples.beta,
        trained.features,
        trained.categorical,
        {"auc": 0.7},
        "x",
    )
    population = frame[frame["snapshot_date"] == frame["snapshot_date"].max()].reset_index(drop=True)
    now = dt.datetime(2025, 6, 2, 8, 0)
    scores = score_population(
        trained.model, population, record, ChampionPointer("v" * 64, "d1", now), "run1", now
    )
    assert len(scores) == 1500
    assert scores["customer_id"].is_unique
    assert scores[["model_version", "decision_id", "run_id"]].drop_duplicates().to_numpy().tolist() == [
        ["v" * 64, "d1", "run1"]
    ]
    assert samples.beta < 0.5
    assert (scores["probability"] < scores["raw_score"]).all(), (
        "down-sampling correction lowers probabilities"
    )
    assert scores["probability"].between(0, 1).all()
    assert scores["percentile"].between(0, 100).all()
    top = scores.sort_values("raw_score").tail(150)
    assert (top["decile"] == 1).all()


def test_duplicate_customers_fail():
    population = pd.DataFrame({"customer_id": ["a", "a"], "snapshot_date": [dt.date(2025, 1, 31)] * 2})
    record = ModelRecord(
        "v", "m1", "churn", dt.datetime(2025, 1, 1), dt.date(2025, 1, 1), 1.0, [], [], {}, "x"
    )
    with pytest.raises(ValueError, match="m1/churn: the population holds duplicate customer_ids"):
        score_population(
            None,
            population,
            record,
            ChampionPointer("v", "d", dt.datetime(2025, 1, 1)),
            "r",
            dt.datetime(2025, 1, 1),
        )
