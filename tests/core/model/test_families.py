"""Challengers per family: the choice on validation, its record, calibration, the store of both kinds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from support.model_synthetic import month_ends, synthetic_frame, synthetic_samples

from factory_assets.core.model import metrics
from factory_assets.core.model.calibration import Calibrator, choose_method, fit_calibrator
from factory_assets.core.model.challenger import family_selection
from factory_assets.core.model.families import choose_family
from factory_assets.core.model.store import ModelStore, ModelStoreError
from factory_assets.core.model.training import predict_sample_scale, split_frame
from factory_assets.core.specs import CalibrationParams, ModelParams

PARAMS = ModelParams(iterations=120, early_stopping_rounds=20, thread_count=2, seed=7)


@pytest.fixture(scope="module")
def samples():
    """A frame whose target is a logistic function of the features: the linear family fits it exactly."""
    frame = synthetic_frame(4000, month_ends(dt.date(2025, 1, 1), 6), seed=11)
    return synthetic_samples(frame, seed=11)


@pytest.fixture(scope="module")
def choice(samples):
    return choose_family(samples, PARAMS, "m1/churn")


def _test_metrics(candidate, samples) -> dict[str, object]:
    test = split_frame(samples, "test")
    trained = candidate.trained
    raw = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
    return metrics.evaluate(test["target"].to_numpy(dtype=int), raw, samples.beta, candidate.calibrator)


def test_every_family_is_fitted_and_the_linear_one_wins_on_linear_signal(choice):
    # given a target that is linear in the logit, with a few thousand rows
    families = [c.trained.family for c in choice.candidates]
    # then both families were fitted, and the one with the best validation AUC won
    assert families == ["catboost", "logistic"]
    best = max(c.validation["auc"] for c in choice.candidates)
    assert choice.winner.validation["auc"] == best
    assert choice.winner.trained.family == "logistic", choice.reason
    assert isinstance(choice.winner.trained.model, Pipeline)
    assert choice.winner.trained.params["C"] in PARAMS.logistic.c_grid
    assert choice.reason.startswith("logistic: highest validation AUC")
    assert "catboost" in choice.reason


def test_the_choice_is_recorded_with_every_familys_metrics(choice, samples):
    tests = [_test_metrics(c, samples) for c in choice.candidates]
    record = family_selection(choice, tests)
    assert record["winner"] == "logistic"
    assert record["reason"] == choice.reason
    assert [f["family"] for f in record["families"]] == ["catboost", "logistic"]
    assert [f["selected"] for f in record["families"]] == [False, True]
    for family in record["families"]:
        assert {"auc", "pr_auc", "lift_top_decile"} <= set(family["validation"])
        assert {"auc", "brier", "ece", "log_loss"} <= set(family["test"])
        assert family["calibration"] in ("platt", "isotonic")


def test_the_choice_is_repeatable_seeded_and_hashes_the_same(tmp_path, samples, choice):
    again = choose_family(samples, PARAMS, "m1/churn")
    assert again.reason == choice.reason
    assert [c.validation for c in again.candidates] == [c.validation for c in choice.candidates]
    assert again.winner.calibrator == choice.winner.calibrator
    store = ModelStore(tmp_path / "models")
    first, second = store.save(choice.winner.trained.model), store.save(again.winner.trained.model)
    assert first == second, "same data and seed must give the same logistic artefact hash"
    assert store.artefact_path(first).suffix == ".pkl"


@pytest.mark.parametrize("family", ["catboost", "logistic"])
def test_a_spec_limited_to_one_family_trains_only_that_family(samples, family):
    params = PARAMS.model_copy(update={"families": [family]})
    only = choose_family(samples, params, "m1/churn")
    assert [c.trained.family for c in only.candidates] == [family]
    assert only.winner.trained.family == family
    assert only.reason.startswith(f"{family}: the only family in the spec")


def test_a_spec_naming_a_family_twice_or_none_is_refused():
    with pytest.raises(ValueError, match="name a family twice"):
        ModelParams(families=["logistic", "logistic"])
    with pytest.raises(ValueError, match="at least 1 item"):
        ModelParams(families=[])
    with pytest.raises(ValueError, match=r"Input should be"):
        ModelParams(families=["xgboost"])


def test_calibrated_test_metrics_are_present_and_ece_small_on_well_specified_data(choice, samples):
    result = _test_metrics(choice.winner, samples)
    assert {"brier", "ece", "calibration", "log_loss"} <= set(result)
    assert len(result["calibration"]) == 10
    assert result["ece"] < 0.02, f"ECE {result['ece']:.4f} on a well-specified, calibrated model"
    assert result["mean_predicted"] == pytest.approx(result["base_rate"], rel=0.1)
    assert 0 < result["brier"] < result["base_rate"] * (1 - result["base_rate"]), "better than the rate"


def test_logistic_artefact_round_trip_and_corruption(tmp_path, samples, choice):
    store = ModelStore(tmp_path / "models")
    trained = choice.winner.trained
    version = store.save(trained.model)
    test = split_frame(samples, "test")
    before = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
    after = predict_sample_scale(store.load(version), test, trained.features, trained.categorical)
    np.testing.assert_allclose(before, after)
    with store.artefact_path(version).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelStoreError, match=f"{version}.pkl is corrupt"):
        store.load(version)


def test_platt_corrects_a_known_miscalibration():
    # given probabilities twice too confident on the logit scale
    rng = np.random.default_rng(0)
    true_logit = rng.normal(-2.0, 1.0, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    overconfident = 1 / (1 + np.exp(-2 * true_logit))
    calibrator = fit_calibrator(overconfident, y, np.ones(len(y)), CalibrationParams(method="platt"))
    assert calibrator.method == "platt"
    assert calibrator.params["slope"] == pytest.approx(0.5, abs=0.05)
    fixed = calibrator.apply(overconfident)
    assert metrics.expected_calibration_error(y, fixed) < metrics.expected_calibration_error(y, overconfident)
    assert Calibrator.from_dict(calibrator.as_dict()) == calibrator


def test_the_method_follows_the_held_out_positives():
    params = CalibrationParams(isotonic_min_positives=500)
    assert choose_method(499, params) == "platt"
    assert choose_method(500, params) == "isotonic"
    assert choose_method(10_000, CalibrationParams(method="platt")) == "platt"
    assert choose_method(10, CalibrationParams(method="none")) == "identity"
    assert Calibrator.from_dict(None).apply(np.array([0.2]))[0] == 0.2, "older models: identity"
