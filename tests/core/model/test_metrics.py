"""Metrics with known answers, cross-checked against scikit-learn; the beta correction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from factory_assets.core.model import metrics


def test_auc_known_answer_with_a_tie():
    # pairs (pos, neg): (0.8 > 0.3), (0.8 > 0.5), (0.5 = 0.5 -> 1/2), (0.5 > 0.3) -> 3.5 / 4
    assert metrics.auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.5, 0.5, 0.3])) == pytest.approx(0.875)


def test_auc_pr_auc_and_log_loss_match_scikit_learn():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 500)
    p = np.clip(np.round(0.3 + 0.3 * y + rng.normal(0, 0.2, 500), 2), 0.01, 0.99)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert metrics.pr_auc(y, p) == pytest.approx(average_precision_score(y, p))
    assert metrics.log_loss(y, p) == pytest.approx(log_loss(y, p))


def test_lift_and_capture_known_answer():
    # 20 rows, 4 positives (base rate 0.2); the top 2 rows hold 2 positives -> rate 1.0, lift 5, capture 0.5
    y = np.zeros(20, dtype=int)
    y[[0, 1, 5, 9]] = 1
    score = np.linspace(1, 0, 20)
    lift, capture = metrics.lift_and_capture(y, score)
    assert lift == pytest.approx(5.0)
    assert capture == pytest.approx(0.5)


def test_calibration_by_decile_counts_and_rates():
    y = np.array([0] * 9 + [1] * 1 + [1] * 10)
    p = np.r_[np.full(10, 0.1), np.full(10, 0.9)]
    table = metrics.calibration_by_decile(y, p, bins=2)
    assert [row["rows"] for row in table] == [10, 10]
    assert table[0]["observed_rate"] == pytest.approx(0.1)
    assert table[1]["observed_rate"] == pytest.approx(1.0)
    assert table[0]["mean_predicted"] == pytest.approx(0.1)


def test_beta_correction_known_answers():
    # beta = 0.25, p_s = 0.5: p = 0.125 / (0.125 - 0.5 + 1) = 0.2
    assert metrics.correct_probability(np.array([0.5]), 0.25)[0] == pytest.approx(0.2)
    # beta = 0.1, p_s = 0.8: p = 0.08 / (0.08 - 0.8 + 1) = 0.08 / 0.28
    assert metrics.correct_probability(np.array([0.8]), 0.1)[0] == pytest.approx(0.08 / 0.28)
    np.testing.assert_allclose(metrics.correct_probability(np.array([0.0, 0.3, 1.0]), 1.0), [0.0, 0.3, 1.0])


def test_beta_correction_recovers_the_population_rate():
    # Down-sample negatives of a known population, estimate p_s by the sample rate per group, correct.
    rng = np.random.default_rng(2)
    true_rate, beta = 0.04, 0.1
    y = rng.random(400_000) < true_rate
    kept = y | (rng.random(len(y)) < beta)
    p_sample = y[kept].mean()
    assert metrics.correct_probability(np.array([p_sample]), beta)[0] == pytest.approx(true_rate, rel=0.05)


def test_beta_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        metrics.correct_probability(np.array([0.5]), 0.0)


def test_evaluate_reports_every_metric_on_corrected_probabilities():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 1000)
    p_s = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.1, 1000), 0.01, 0.99)
    result = metrics.evaluate(y, p_s, beta=0.5)
    assert set(result) >= {
        "auc",
        "pr_auc",
        "log_loss",
        "lift_top_decile",
        "capture_top_decile",
        "rows",
        "positives",
        "base_rate",
        "calibration",
    }
    assert result["rows"] == 1000
    assert result["positives"] == int(y.sum())
    assert result["mean_predicted"] < p_s.mean(), "the beta correction lowers probabilities"
    assert result["auc"] == pytest.approx(roc_auc_score(y, p_s)), "AUC is rank-based, unchanged by beta"


def test_metrics_refuse_a_single_class():
    with pytest.raises(ValueError, match="both classes"):
        metrics.auc(np.zeros(10, dtype=int), np.arange(10.0))
