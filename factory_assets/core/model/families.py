"""One challenger per retrain from several model families: fit each, choose on validation, refit, calibrate.

Every family named in the spec (`model.families`) is fitted on the train split; each is measured on
the validation split, and the highest validation AUC wins (ties go to the family listed first).
The out-of-time test is deliberately not used for the choice: the champion rules compare the winner
with the champion on that test, and a test that has already picked the best of several models
over-states the winner (and DeLong's p-value). CatBoost's validation AUC is slightly optimistic, since
the same rows chose its iteration count; the logistic family's C is chosen inside the train split.

The winner is then refitted on train + validation with what its first fit found (CatBoost's tree
count, the logistic C; `model.refit`), so no labelled row of the training window is left out of the
model that scores.

Calibration is fitted on held-out predictions only: each family's calibrator maps its first fit's
predictions on the validation split, rows that fit did not learn from (`core.model.calibration`;
CatBoost's stopping point was chosen on them, one number). The refitted winner keeps its first fit's
calibrator. This is scikit-learn's `CalibratedClassifierCV(..., ensemble=False)` scheme (calibrate on
out-of-fold predictions of fold models, apply the map to the model refitted on all rows) with the
validation split as the one fold: the refit has seen the validation rows, so its own predictions
there would be over-confident and are never used to calibrate. What it assumes, that the refit (the
same settings on 25 % more rows of the same kind) scores like its first fit, is checked where it
matters, on the out-of-time test: the record keeps both fits' test metrics, and
`bench/bench_quality.py` reports both on every dataset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from factory_assets.core.model import metrics
from factory_assets.core.model.calibration import Calibrator, fit_calibrator, held_out_weights
from factory_assets.core.model.training import (
    TrainedModel,
    fit_family,
    predict_sample_scale,
    refit_family,
    split_frame,
)
from factory_assets.core.specs import ModelParams

if TYPE_CHECKING:
    from factory_assets.core.prep.prepared import ModelSamples

SELECTION_METRIC = "auc"
"""Validation metric that picks the family (rank-based: unaffected by beta and calibration)."""


@dataclass(frozen=True)
class Candidate:
    """One family's fitted model, its calibrator and its validation metrics."""

    trained: TrainedModel
    calibrator: Calibrator
    validation: dict[str, float]
    fit_seconds: float


@dataclass(frozen=True)
class FamilyChoice:
    """Every family's candidate, the winner and why it won, and the model that is stored and scores."""

    candidates: list[Candidate]
    winner: Candidate
    reason: str
    final: TrainedModel
    """The winner refitted on train + validation (its first fit when `model.refit` is off)."""
    refit_seconds: float = 0.0

    @property
    def refitted(self) -> bool:
        """Whether the stored model is a refit (not the winner's first fit)."""
        return self.final is not self.winner.trained


def validation_metrics(y: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    """Rank metrics of sample-scale scores on the validation split."""
    lift, capture = metrics.lift_and_capture(y, raw)
    return {
        "auc": metrics.auc(y, raw),
        "pr_auc": metrics.pr_auc(y, raw),
        "lift_top_decile": lift,
        "capture_top_decile": capture,
        "rows": float(len(y)),
        "positives": float(np.sum(y)),
    }


def fit_candidate(samples: ModelSamples, family: str, params: ModelParams, cell: str) -> Candidate:
    """Fit one family, measure it on validation and calibrate it on the same held-out rows."""
    started = time.perf_counter()
    trained = fit_family(samples, family, params, cell)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    validation = split_frame(samples, "validation")
    y = validation["target"].to_numpy(dtype=int)
    raw = predict_sample_scale(trained.model, validation, trained.features, trained.categorical)
    weight = validation["weight"].to_numpy(dtype=float) if "weight" in validation else np.ones(len(y))
    calibrator = fit_calibrator(
        metrics.correct_probability(raw, samples.beta),
        y,
        held_out_weights(y, weight, samples.beta),
        params.calibration,
    )
    return Candidate(trained, calibrator, validation_metrics(y, raw), seconds)


def choose_family(samples: ModelSamples, params: ModelParams, cell: str) -> FamilyChoice:
    """Fit every family of the spec, pick the best on validation, refit the winner on train + validation."""
    candidates = [fit_candidate(samples, family, params, cell) for family in params.families]
    winner = max(candidates, key=lambda c: c.validation[SELECTION_METRIC])  # first of equals wins
    reason = selection_reason(candidates, winner)
    if not params.refit:
        return FamilyChoice(candidates, winner, reason, winner.trained)
    started = time.perf_counter()
    final = refit_family(samples, winner.trained, params)
    return FamilyChoice(candidates, winner, reason, final, time.perf_counter() - started)


def selection_reason(candidates: list[Candidate], winner: Candidate) -> str:
    """One line a reviewer reads: the winner, its validation AUC and the others'."""
    family = winner.trained.family
    own = winner.validation[SELECTION_METRIC]
    if len(candidates) == 1:
        return f"{family}: the only family in the spec (validation AUC {own:.4f})"
    others = ", ".join(
        f"{c.trained.family} {c.validation[SELECTION_METRIC]:.4f}" for c in candidates if c is not winner
    )
    return (
        f"{family}: highest validation AUC {own:.4f} (vs {others}); "
        "the out-of-time test is left to the champion rules"
    )
