"""DeLong's test for two correlated AUCs on the same cases (fast midrank form, Sun & Xu 2014).

DeLong, DeLong & Clarke-Pearson (1988) estimate the covariance of AUCs measured on the same
positives and negatives from per-case "structural components" (placement values). Sun & Xu (2014)
compute them from midranks in O(n log n) instead of the O(m * n) pairwise comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class DeLongResult:
    """Two AUCs on the same cases, their covariance and the two-sided test of equality."""

    auc_a: float
    auc_b: float
    covariance: np.ndarray
    z: float
    p_value: float


def delong_placements(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and structural components of k score rows (shape k x n) against 0/1 labels `y`.

    Returns (aucs of shape k, v10 of shape k x positives, v01 of shape k x negatives); ties count 1/2.
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError(f"DeLong needs both classes; got {m} positives and {n} negatives")
    pos, neg = scores[:, y], scores[:, ~y]
    rank_all = rankdata(np.hstack([pos, neg]), axis=1)
    rank_pos, rank_neg = rankdata(pos, axis=1), rankdata(neg, axis=1)
    v10 = (rank_all[:, :m] - rank_pos) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_neg) / m
    return v10.mean(axis=1), v10, v01


def delong_test(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> DeLongResult:
    """Test H0: AUC(a) == AUC(b) for two scores of the same cases (two-sided p-value)."""
    aucs, v10, v01 = delong_placements(y, np.vstack([score_a, score_b]))
    m, n = v10.shape[1], v01.shape[1]
    cov = np.cov(v10) / m + np.cov(v01) / n
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = aucs[0] - aucs[1]
    if var_diff <= 1e-15:
        z = 0.0 if abs(diff) < 1e-15 else float(np.sign(diff) * np.inf)
    else:
        z = float(diff / np.sqrt(var_diff))
    p_value = float(2 * norm.sf(abs(z)))
    return DeLongResult(float(aucs[0]), float(aucs[1]), cov, z, p_value)
