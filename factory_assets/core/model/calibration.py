"""Calibration of natural probabilities: a monotone map fitted on held-out rows, stored as numbers.

The model's sample-scale score is first corrected for the down-sampling of negatives (`beta`);
the corrected probability is then mapped by a calibrator fitted on the validation split, whose
negatives are weighted by 1 / beta (times their de-trending weight) so that the held-out rows carry
the natural class balance. Platt scaling (a logistic fit on the logit of the probability) needs few
rows; isotonic regression is more flexible but noisy with few positives, so `auto` picks it only
from `isotonic_min_positives` held-out positives.

A calibrator is plain data (a method and its numbers), kept in the model's registry record next to
beta: no pickle, and any reader can apply it. Ranks (AUC, lift, percentiles) stay on the raw score,
since isotonic calibration creates ties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from factory_assets.core.specs import CalibrationParams

CLIP = 1e-6
"""Probabilities are kept in [CLIP, 1 - CLIP] before taking a logit."""

Method = Literal["identity", "platt", "isotonic"]


@dataclass(frozen=True)
class Calibrator:
    """A monotone map of natural probabilities: identity, Platt (a, b) or isotonic (knots)."""

    method: Method = "identity"
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, probability: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of `probability` (natural scale, after the beta correction)."""
        p = np.asarray(probability, dtype=float)
        if self.method == "identity":
            return p
        if self.method == "platt":
            z = self.params["slope"] * _logit(p) + self.params["intercept"]
            return 1.0 / (1.0 + np.exp(-z))
        return np.interp(p, self.params["x"], self.params["y"])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the registry."""
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> Calibrator:
        """The calibrator stored by `as_dict` (identity for a model registered before calibration)."""
        if not value:
            return cls()
        return cls(value["method"], dict(value.get("params", {})))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def choose_method(positives: float, params: CalibrationParams) -> Method:
    """The calibration method for `positives` held-out positives under the spec's setting."""
    if params.method == "none":
        return "identity"
    if params.method == "auto":
        return "isotonic" if positives >= params.isotonic_min_positives else "platt"
    return params.method


def fit_calibrator(
    probability: np.ndarray, y: np.ndarray, weight: np.ndarray, params: CalibrationParams
) -> Calibrator:
    """Fit the spec's calibrator on held-out natural probabilities, labels and weights."""
    p, y, w = np.asarray(probability, float), np.asarray(y, int), np.asarray(weight, float)
    method = choose_method(int(y.sum()), params)
    if method == "identity":
        return Calibrator()
    if method == "platt":
        # C large: Platt scaling is a plain two-parameter fit, not a regularised one
        fit = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p).reshape(-1, 1), y, sample_weight=w)
        return Calibrator("platt", {"slope": float(fit.coef_[0, 0]), "intercept": float(fit.intercept_[0])})
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y, sample_weight=w)
    return Calibrator(
        "isotonic", {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}
    )


def held_out_weights(y: np.ndarray, weight: np.ndarray, beta: float) -> np.ndarray:
    """Weights that give held-out rows the natural class balance: negatives count 1 / beta."""
    y = np.asarray(y, dtype=int)
    return np.asarray(weight, dtype=float) * np.where(y == 0, 1.0 / beta, 1.0)
