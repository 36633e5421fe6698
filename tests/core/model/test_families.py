"""Challengers per family: the choice on validation, its record, calibration, the store of both kinds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from support.model_synthetic import month_ends, synthetic_frame, synthetic_samples

from factory_assets.core.model import metrics
from factory_assets.core.model.calibration import Calibrator, choose_method, fit_calibrator, held_out_weights
from factory_assets.core.model.challenger import family_selection, family_test_metrics
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
    assert store.save(choice.final.model) == store.save(again.final.model), "the refit is seeded too"


def _pool(samples):
    return samples.frame[samples.frame["split"].isin(["train", "validation"])]


def test_the_winner_is_refitted_on_train_and_validation_with_what_its_first_fit_found(samples, choice):
    # given the logistic winner, fitted first on the train split with C chosen there
    first, final = choice.winner.trained, choice.final
    assert choice.refitted
    assert final is not first
    # then the stored model is the same family with the same C, fitted on train + validation
    assert final.family == first.family == "logistic"
    assert final.params["C"] == first.params["C"]
    assert first.params["C"] == final.model.named_steps["classifier"].C
    assert final.model.named_steps["columns"].n_features_in_ == len(first.features)
    imputer = final.model.named_steps["columns"].named_transformers_["numeric"].named_steps["impute"]
    medians = _pool(samples)[[f for f in first.features if f not in first.categorical]].median()
    np.testing.assert_allclose(imputer.statistics_, medians.to_numpy(), err_msg="imputed from the pool")
    assert choice.refit_seconds > 0


def test_a_catboost_refit_grows_the_tree_count_early_stopping_found(samples):
    params = PARAMS.model_copy(update={"families": ["catboost"]})
    only = choose_family(samples, params, "m1/churn")
    first, final = only.winner.trained, only.final
    assert final.model.tree_count_ == first.best_iteration + 1
    assert final.params["iterations"] == first.best_iteration + 1
    assert "early_stopping_rounds" not in final.params
    pool = _pool(samples)
    raw = predict_sample_scale(final.model, pool, final.features, final.categorical)
    assert len(raw) == len(pool)


def test_the_refit_keeps_the_calibrator_fitted_on_the_first_fits_held_out_rows(samples, choice):
    # the calibrator maps the first fit's validation predictions, rows that fit never saw
    validation = split_frame(samples, "validation")
    first = choice.winner.trained
    raw = predict_sample_scale(first.model, validation, first.features, first.categorical)
    y = validation["target"].to_numpy(dtype=int)
    weights = held_out_weights(y, validation["weight"].to_numpy(dtype=float), samples.beta)
    expected = fit_calibrator(metrics.correct_probability(raw, samples.beta), y, weights, PARAMS.calibration)
    assert choice.winner.calibrator == expected


def test_refit_off_stores_the_first_fit(samples):
    params = PARAMS.model_copy(update={"refit": False})
    plain = choose_family(samples, params, "m1/churn")
    assert not plain.refitted
    assert plain.final is plain.winner.trained


def test_the_record_keeps_the_first_fit_test_metrics_of_a_refitted_winner(samples, choice):
    tests = family_test_metrics(choice, split_frame(samples, "test"), samples.beta, 10)
    first = _test_metrics(choice.winner, samples)
    record = family_selection(choice, tests, first)
    winner = next(f for f in record["families"] if f["selected"])
    other = next(f for f in record["families"] if not f["selected"])
    assert winner["refit"] is True
    assert not other["refit"]
    assert winner["test_first_fit"]["auc"] == first["auc"]
    assert winner["test"]["auc"] != first["auc"], "the stored model's test metrics are the refit's"


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
    # the stored model: the refit, with the calibrator of its first fit
    result = family_test_metrics(choice, split_frame(samples, "test"), samples.beta, 10)[1]
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
