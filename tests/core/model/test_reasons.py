"""Reason codes: per-customer contributions per family, summed to the raw log-odds, and the top n."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.model_synthetic import month_ends, synthetic_frame, synthetic_samples

from factory_assets.core.model.logistic import as_object_categories
from factory_assets.core.model.reason_columns import reason_column, reason_columns, reason_columns_in
from factory_assets.core.model.reasons import (
    Contributions,
    contributions,
    reason_codes,
    top_reasons,
    transformed_sources,
    value_text,
)
from factory_assets.core.model.training import (
    TrainedModel,
    fit_challenger,
    fit_logistic,
    make_pool,
    model_frame,
)
from factory_assets.core.specs import LogisticParams, ModelParams

PARAMS = ModelParams(
    iterations=60,
    early_stopping_rounds=10,
    logistic=LogisticParams(cv_folds=3, c_grid=[0.1, 1.0], min_category_share=0.15),
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(1500, month_ends(dt.date(2025, 1, 1), 5), seed=11)


@pytest.fixture(scope="module")
def population(frame: pd.DataFrame) -> pd.DataFrame:
    """The latest snapshot: what scoring explains (missing numerics and categories included)."""
    return frame[frame["snapshot_date"] == frame["snapshot_date"].max()].reset_index(drop=True)


@pytest.fixture(scope="module")
def catboost(frame: pd.DataFrame) -> TrainedModel:
    return fit_challenger(synthetic_samples(frame, seed=11, negatives_per_positive=1.0), PARAMS, "m/c")


@pytest.fixture(scope="module")
def logistic(frame: pd.DataFrame) -> TrainedModel:
    return fit_logistic(synthetic_samples(frame, seed=11, negatives_per_positive=1.0), PARAMS, "m/c")


def test_catboost_shap_values_and_expected_value_sum_to_the_raw_log_odds(catboost, population):
    found = contributions(catboost.model, population, catboost.features, catboost.categorical)
    raw = catboost.model.predict(
        make_pool(population, catboost.features, catboost.categorical), prediction_type="RawFormulaVal"
    )

    assert found.values.shape == (len(population), len(catboost.features)), "one column per source feature"
    np.testing.assert_allclose(found.values.sum(axis=1) + found.base, raw, atol=1e-9)
    assert np.allclose(found.base, found.base[0]), "the expected value is the same for every row"


def test_logistic_contributions_and_intercept_sum_to_the_log_odds(logistic, population):
    found = contributions(logistic.model, population, logistic.features, logistic.categorical)
    data = as_object_categories(
        model_frame(population, logistic.features, logistic.categorical), logistic.categorical
    )

    assert found.values.shape == (len(population), len(logistic.features))
    np.testing.assert_allclose(
        found.values.sum(axis=1) + found.base, logistic.model.decision_function(data), atol=1e-9
    )


def test_logistic_one_hot_levels_and_missing_indicators_are_summed_back_to_their_feature(
    logistic, population
):
    # given the pipeline's transformed columns and their coefficients
    columns = logistic.model.named_steps["columns"]
    data = as_object_categories(
        model_frame(population, logistic.features, logistic.categorical), logistic.categorical
    )
    weighted = columns.transform(data) * logistic.model.named_steps["classifier"].coef_[0]
    sources = transformed_sources(logistic.model, logistic.features, logistic.categorical)
    found = contributions(logistic.model, population, logistic.features, logistic.categorical)

    # then region's one-hot levels (an 'infrequent' level among them) are one feature
    region = [i for i, s in enumerate(sources) if s == "region"]
    names = columns.get_feature_names_out()[region]
    assert len(region) >= 3
    assert any("infrequent" in n for n in names), "the rare levels are grouped into one column"
    position = logistic.features.index("region")
    np.testing.assert_allclose(found.values[:, position], weighted[:, region].sum(axis=1))
    # and age's missing indicator counts towards age
    age = [i for i, s in enumerate(sources) if s == "age"]
    assert len(age) == 2, "age had missing values in training: its scaled value and its indicator"
    np.testing.assert_allclose(found.values[:, logistic.features.index("age")], weighted[:, age].sum(axis=1))


def test_top_reasons_are_ordered_by_absolute_contribution_and_skip_zero_contributions():
    # given three customers and three features, one of them contributing nothing for customer 2
    seen = pd.DataFrame(
        {
            "tenure": [12.0, 3.0, np.nan],
            "region": pd.Categorical(["north", "south", "__missing__"]),
            "arpu": [31.25, 1234567.0, 0.5],
        }
    )
    values = np.array([[0.1, -0.9, 0.5], [0.2, 0.0, -0.2], [-0.3, 0.3, 0.01]])
    found = Contributions(values, np.zeros(3), ["tenure", "region", "arpu"])

    # when the top 4 are asked for (one more than there are features)
    reasons = top_reasons(found, seen, top_n=4)

    # then the columns are the four slots' in file order
    assert list(reasons.columns) == reason_columns(4)
    first = reasons.iloc[0]
    assert [first[reason_column(k, "feature")] for k in (1, 2, 3)] == ["region", "arpu", "tenure"]
    assert [first[reason_column(k, "contribution")] for k in (1, 2, 3)] == [-0.9, 0.5, 0.1]
    assert [first[reason_column(k, "value")] for k in (1, 2, 3)] == ["north", "31.25", "12"]
    # a tie keeps the feature order; a zero contribution is no reason
    second = reasons.iloc[1]
    assert [second[reason_column(k, "feature")] for k in (1, 2)] == ["tenure", "arpu"]
    assert pd.isna(second[reason_column(3, "feature")])
    assert np.isnan(second[reason_column(3, "contribution")])
    # a missing value is null, never the placeholder category or 'nan'
    third = reasons.iloc[2]
    assert [third[reason_column(k, "feature")] for k in (1, 2)] == ["tenure", "region"]
    assert pd.isna(third[reason_column(1, "value")])
    assert pd.isna(third[reason_column(2, "value")])
    # and the slot past the feature count is empty for everyone
    assert reasons[reason_column(4, "feature")].isna().all()


def test_values_are_rendered_as_short_text():
    assert value_text(3.0) == "3"
    assert value_text(31.25) == "31.25"
    assert value_text(12.333333333333334) == "12.3333"
    assert value_text(np.nan) is None
    assert value_text("premium") == "premium"
    assert value_text("__missing__") is None


def test_reason_codes_are_the_same_in_chunks_and_keep_the_rows_index(catboost, population):
    shuffled = population.sample(frac=1.0, random_state=3)
    whole = reason_codes(catboost.model, shuffled, catboost.features, catboost.categorical, 3)
    chunked = reason_codes(
        catboost.model, shuffled, catboost.features, catboost.categorical, 3, chunk_rows=97
    )

    pd.testing.assert_frame_equal(whole, chunked)
    assert whole.index.equals(shuffled.index), "rows line up with the scored population"
    assert whole[reason_column(1, "feature")].notna().all()
    top = whole[[reason_column(k, "contribution") for k in (1, 2, 3)]].abs().to_numpy()
    assert (np.diff(top, axis=1) <= 0).all(), "largest absolute contribution first"


def test_an_empty_population_gives_typed_empty_columns(catboost, population):
    empty = reason_codes(catboost.model, population.iloc[:0], catboost.features, catboost.categorical, 2)

    assert list(empty.columns) == reason_columns(2)
    assert empty.empty
    assert empty[reason_column(1, "contribution")].dtype == np.float64


def test_an_unknown_model_type_is_refused(population):
    with pytest.raises(TypeError, match="no reason codes for a model of type dict"):
        contributions({}, population, ["age"], [])


def test_reason_columns_are_found_in_slot_order():
    names = ["reason_10_feature", "probability", "reason_2_value", "reason_2_feature", "reason_x_value"]
    assert reason_columns_in(names) == ["reason_2_feature", "reason_2_value", "reason_10_feature"]
