"""Model quality on a labelled set: AUC, PR-AUC, log-loss, top-decile lift, Brier, ECE, calibration.

All functions take 0/1 labels and scores as arrays. Probabilities from a model trained on a sample
whose negatives were down-sampled (a kept fraction beta) are corrected first with
`correct_probability`, then mapped by the model's calibrator; AUC, PR-AUC and lift are rank-based
and read the raw score (an isotonic calibrator creates ties that would blur the ranking).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from factory_assets.core.model.calibration import Calibrator

EPS = 1e-15
TOP_FRACTION = 0.1
"""The top decile: the share of highest-scored cases behind lift and capture rate."""


def correct_probability(p_sample: np.ndarray, beta: float) -> np.ndarray:
    """Natural probability from a score trained with a fraction `beta` of negatives kept.

    p = beta * p_s / (beta * p_s - p_s + 1) (Dal Pozzolo et al. 2015); beta = 1 leaves p_s unchanged.
    """
    if not 0 < beta <= 1:
        raise ValueError(f"beta must be in (0, 1], got {beta}")
    p_s = np.asarray(p_sample, dtype=float)
    return beta * p_s / (beta * p_s - p_s + 1.0)


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return y.astype(bool)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney form, ties count 1/2); both classes required."""
    y = _labels(y)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError(f"AUC needs both classes; got {m} positives and {n} negatives")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - m * (m + 1) / 2) / (m * n))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: mean precision at each positive, tied scores taken as one threshold."""
    y = _labels(y)
    if not y.any():
        raise ValueError("PR-AUC needs at least one positive")
    score = np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(t)[last_of_tie]
    seen = (np.arange(1, len(s) + 1))[last_of_tie]
    recall_step = np.diff(np.r_[0, tp]) / tp[-1]
    return float(np.sum(recall_step * tp / seen))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities `p` (clipped away from 0 and 1)."""
    y = _labels(y)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def top_rows(score: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean mask of the ceil(fraction * n) highest scores (ties broken by position, stable)."""
    score = np.asarray(score, dtype=float)
    k = int(np.ceil(fraction * len(score)))
    mask = np.zeros(len(score), dtype=bool)
    mask[np.argsort(-score, kind="mergesort")[:k]] = True
    return mask


def lift_and_capture(y: np.ndarray, score: np.ndarray, fraction: float = TOP_FRACTION) -> tuple[float, float]:
    """(lift, capture) in the top `fraction`: its positive rate over the base rate; its share of positives."""
    y = _labels(y)
    if not y.any():
        raise ValueError("lift needs at least one positive")
    top = top_rows(score, fraction)
    lift = float(y[top].mean() / y.mean())
    capture = float(y[top].sum() / y.sum())
    return lift, capture


def calibration_by_decile(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed rate in `bins` equal-count groups by `p` (group 1 = lowest)."""
    y = _labels(y)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="mergesort")
    return [
        {
            "decile": i + 1,
            "rows": len(part),
            "mean_predicted": float(p[part].mean()),
            "observed_rate": float(y[part].mean()),
        }
        for i, part in enumerate(np.array_split(order, bins))
        if len(part)
    ]


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between probabilities and 0/1 outcomes."""
    y = _labels(y)
    return float(np.mean((np.asarray(p, dtype=float) - y) ** 2))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |mean predicted - observed rate| over `bins` equal-count groups by `p`."""
    table = calibration_by_decile(y, p, bins)
    total = sum(row["rows"] for row in table)
    return float(
        sum(row["rows"] * abs(row["mean_predicted"] - row["observed_rate"]) for row in table) / total
    )


def evaluate(
    y: np.ndarray, p_sample: np.ndarray, beta: float, calibrator: Calibrator | None = None, bins: int = 10
) -> dict[str, object]:
    """Every test metric of one model: ranks from the raw score, the rest from calibrated probabilities."""
    y = _labels(y)
    raw = np.asarray(p_sample, dtype=float)
    p = (calibrator or Calibrator()).apply(correct_probability(raw, beta))
    lift, capture = lift_and_capture(y, raw)
    return {
        "auc": auc(y, raw),
        "pr_auc": pr_auc(y, raw),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p, bins),
        "lift_top_decile": lift,
        "capture_top_decile": capture,
        "rows": len(y),
        "positives": int(y.sum()),
        "base_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "calibration": calibration_by_decile(y, p, bins),
    }
