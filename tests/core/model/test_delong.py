"""DeLong's test: the fast midrank form against the original structural components, and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from factory_assets.core.model.delong import delong_placements, delong_test


def pairwise_reference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong et al. (1988) computed literally: O(m*n) kernel psi(x, y), structural components V10 / V01."""
    y = np.asarray(y).astype(bool)

    def components(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = score[y], score[~y]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10_a, v01_a), (v10_b, v01_b) = components(a), components(b)
    m, n = len(v10_a), len(v01_a)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    s = s10 / m + s01 / n
    diff = v10_a.mean() - v10_b.mean()
    z = diff / np.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return v10_a.mean(), v10_b.mean(), 2 * norm.sf(abs(z))


def test_matches_the_pairwise_formula_on_random_scores_with_ties():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    a = np.round(y * 0.8 + rng.normal(size=300), 1)  # rounding creates ties
    b = np.round(y * 0.4 + rng.normal(size=300), 1)
    result = delong_test(y, a, b)
    auc_a, auc_b, p_value = pairwise_reference(y, a, b)
    assert result.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert result.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9), "midrank p-value differs from O(n^2) reference"


def test_hand_computed_variance_of_a_four_case_example():
    # positives score 0.9 and 0.4, negatives 0.6 and 0.1: AUC = 3/4.
    # V10 (per positive) = [1, 0.5], V01 (per negative) = [0.5, 1]; var = 0.125/2 + 0.125/2 = 0.125
    y = np.array([1, 1, 0, 0])
    aucs, v10, v01 = delong_placements(y, np.array([0.9, 0.4, 0.6, 0.1]))
    assert aucs[0] == pytest.approx(0.75)
    np.testing.assert_allclose(v10[0], [1.0, 0.5])
    np.testing.assert_allclose(v01[0], [0.5, 1.0])
    variance = np.var(v10[0], ddof=1) / 2 + np.var(v01[0], ddof=1) / 2
    assert variance == pytest.approx(0.125)


def test_hand_computed_two_model_example():
    # y = 0,0,1,1,1. Model a separates perfectly (AUC 1, zero variance). Model b: positives 0.2, 0.7, 0.9
    # vs negatives 0.3, 0.6 -> V10_b = [0, 1, 1], V01_b = [2/3, 2/3] -> AUC_b = 2/3.
    # var(AUC_a - AUC_b) = var(V10_b)/3 + var(V01_b)/2 = (1/3)/3 + 0 = 1/9 -> z = (1/3) / (1/3) = 1.
    y = np.array([0, 0, 1, 1, 1])
    result = delong_test(y, np.array([0.1, 0.2, 0.6, 0.7, 0.8]), np.array([0.3, 0.6, 0.2, 0.7, 0.9]))
    assert result.auc_a == pytest.approx(1.0)
    assert result.auc_b == pytest.approx(2 / 3)
    assert result.z == pytest.approx(1.0)
    assert result.p_value == pytest.approx(2 * norm.sf(1.0))  # 0.3173


def test_hanley_mcneil_1982_rating_example_auc():
    # Hanley & McNeil (1982), Radiology 143:29-36, table 1: 5-point ratings of 58 normal and 51 abnormal
    # CT images; published AUC 0.893.
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    y = np.r_[np.zeros(len(normal)), np.ones(len(abnormal))]
    aucs, _, _ = delong_placements(y, np.r_[normal, abnormal].astype(float))
    assert aucs[0] == pytest.approx(0.893, abs=5e-4)


def test_identical_scores_are_not_different():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 100)
    s = rng.normal(size=100) + y
    result = delong_test(y, s, s)
    assert result.z == 0.0
    assert result.p_value == pytest.approx(1.0)


def test_a_clearly_better_model_is_significant():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    strong, weak = y * 2.0 + rng.normal(size=2000), y * 0.3 + rng.normal(size=2000)
    result = delong_test(y, strong, weak)
    assert result.auc_a > result.auc_b
    assert result.p_value < 1e-10


def test_single_class_fails_clearly():
    with pytest.raises(ValueError, match="both classes"):
        delong_test(np.ones(5), np.arange(5.0), np.arange(5.0))


def test_is_fast_on_large_inputs():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200_000)
    result = delong_test(y, y + rng.normal(size=200_000), y * 0.9 + rng.normal(size=200_000))
    assert 0 <= result.p_value <= 1
