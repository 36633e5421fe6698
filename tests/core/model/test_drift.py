"""PSI with known answers, the drift share, and the Evidently report on a seeded sample."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from support.model_synthetic import CATEGORICAL, feature_names, synthetic_frame

from factory_assets.core.model.drift import (
    feature_psi,
    psi_categorical,
    psi_numeric,
    report_features,
    summarise,
    write_evidently_report,
)

PSI_HALF_TO_QUARTER = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)


def test_psi_numeric_known_answer_on_two_bins():
    # Reference 0..99 splits at its median into 50 / 50; current puts 25 below and 75 above.
    reference = np.arange(100.0)
    current = np.r_[np.full(25, 10.0), np.full(75, 90.0)]
    assert psi_numeric(reference, current, bins=2) == pytest.approx(PSI_HALF_TO_QUARTER)  # 0.2747


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert psi_numeric(reference, rng.normal(size=20_000)) < 0.01
    assert psi_numeric(reference, rng.normal(0.5, 1, 20_000)) > 0.2


def test_missing_values_are_a_bin_of_their_own():
    reference = np.arange(100.0)
    current = np.r_[np.arange(50.0), np.full(50, np.nan)]
    assert psi_numeric(reference, current) > 1.0, "half the values going missing is a large drift"


def test_psi_categorical_known_answer():
    reference = np.array(["a"] * 50 + ["b"] * 50, dtype=object)
    current = np.array(["a"] * 25 + ["b"] * 75, dtype=object)
    assert psi_categorical(reference, current) == pytest.approx(PSI_HALF_TO_QUARTER)


def test_new_category_and_missing_count_as_drift():
    reference = np.array(["a"] * 100, dtype=object)
    current = np.array(["a"] * 50 + [None] * 25 + ["new"] * 25, dtype=object)
    assert psi_categorical(reference, current) > 1.0


def test_summarise_orders_drifted_features_and_computes_the_share():
    summary = summarise({"a": 0.05, "b": 0.4, "c": 0.2, "d": 0.25}, threshold=0.2)
    assert summary.drifted == ["b", "d", "c"]
    assert summary.drift_share == pytest.approx(0.75)


@pytest.fixture(scope="module")
def frames():
    snapshot = [dt.date(2025, 6, 30)]
    return (
        synthetic_frame(3000, snapshot, seed=1),
        synthetic_frame(3000, snapshot, seed=2),
        synthetic_frame(3000, snapshot, seed=3, shift=0.5),
    )


def test_drift_share_separates_a_shifted_population(frames):
    reference, same, shifted = frames
    features = feature_names(reference)
    stable = summarise(feature_psi(reference, same, features, CATEGORICAL), 0.2)
    drifted = summarise(feature_psi(reference, shifted, features, CATEGORICAL), 0.2)
    assert stable.drift_share == 0.0, stable.psi
    assert drifted.drift_share >= 0.5, drifted.psi
    assert "region" in drifted.drifted


def test_evidently_report_is_written(tmp_path, frames):
    reference, _, shifted = frames
    features = feature_names(reference)
    summary = summarise(feature_psi(reference, shifted, features, CATEGORICAL), 0.2)
    path = tmp_path / "reports" / "drift" / "m1" / "churn" / "2025-06-30.html"
    written = write_evidently_report(reference, shifted, CATEGORICAL, summary, 0.3, path, seed=1)
    assert written == path
    assert path.stat().st_size > 10000
    text = path.read_text(encoding="utf-8")
    assert "region" in text
    assert "PSI" in text


def test_report_features_are_the_largest_psi_first():
    summary = summarise({f"f{i}": i / 100 for i in range(30)}, threshold=0.2)
    assert report_features(summary, limit=3) == ["f29", "f28", "f27"]


def test_evidently_report_when_no_ranked_feature_has_values_on_both_sides(tmp_path, frames):
    # Issue 15: re-keyed ids plus a new column: every customer is new, so every history feature is
    # null in the current population, and those rank highest by PSI. Evidently then got no column
    # and raised a raw ZeroDivisionError (its share of drifted columns over zero columns).
    reference, current, _ = frames
    features = feature_names(reference)
    current = current.copy()
    current[features] = None
    summary = summarise(feature_psi(reference, current, features, CATEGORICAL), 0.2)
    path = tmp_path / "drift.html"
    written = write_evidently_report(reference, current, CATEGORICAL, summary, 0.3, path, seed=1)
    text = written.read_text(encoding="utf-8")
    assert "no feature has values on both sides" in text
    assert features[0] in text, "the page names the features left out"
