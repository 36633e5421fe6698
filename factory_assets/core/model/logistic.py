"""The logistic family: a regularised logistic regression as a scikit-learn pipeline.

Numerics are imputed with the median (plus a missing-indicator column where values were missing)
and standardised; categoricals (strings, missing as `MISSING_CATEGORY`, as `model_frame` gives
them) are one-hot encoded, levels rarer than `min_category_share` of the training rows grouped as
'infrequent' and levels unseen in training ignored at scoring. C is chosen from the spec's `c_grid`
by shuffled, seeded stratified folds (the sample-weighted log-loss on each held-out fold, averaged
over the folds), then the pipeline is fitted on all the rows given with that C.

The solver is Newton-Cholesky: a handful of exact Newton steps on a problem of a few hundred
columns, several times faster than lbfgs on these designs and deterministic, so the same sample and
spec give the same coefficients (and the same content hash). The columns are fitted once per fold,
not once per C, and the linear algebra runs on one BLAS thread: the matrices are small, and on a
busy 2-core machine a second BLAS thread made each fit 3-7x slower (threads waiting on each other).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from factory_assets.core.specs import LogisticParams

SOLVER = "newton-cholesky"
BLAS_THREADS = 1
CLIP = 1e-15


def logistic_pipeline(features: list[str], categorical: list[str], params: LogisticParams) -> Pipeline:
    """The unfitted pipeline: impute + standardise numerics, one-hot categoricals, logistic regression."""
    numeric = [f for f in features if f not in categorical]
    cats = [f for f in features if f in categorical]
    numeric_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    encoder = OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=params.min_category_share, sparse_output=False
    )
    columns = ColumnTransformer([("numeric", numeric_steps, numeric), ("categorical", encoder, cats)])
    classifier = LogisticRegression(C=1.0, max_iter=params.max_iter, solver=SOLVER)
    return Pipeline([("columns", columns), ("classifier", classifier)])


def as_object_categories(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """`model_frame`'s output with categoricals as object strings (what the one-hot encoder learns)."""
    return frame.assign(**{c: frame[c].astype(object) for c in categorical if c in frame.columns})


def weighted_log_loss(y: np.ndarray, p: np.ndarray, weight: np.ndarray) -> float:
    """Sample-weighted mean binary cross-entropy."""
    p = np.clip(p, CLIP, 1 - CLIP)
    return float(np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=weight))


def cv_losses(
    x: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray,
    pipeline: Pipeline,
    c_grid: list[float],
    folds: int,
    seed: int,
) -> np.ndarray:
    """Mean held-out weighted log-loss of each C over seeded stratified folds (columns fitted per fold)."""
    losses = np.zeros(len(c_grid))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(x, y):
        columns = clone(pipeline.named_steps["columns"])
        fitted = columns.fit_transform(x.iloc[fit_rows])
        held = columns.transform(x.iloc[held_rows])
        for j, c in enumerate(c_grid):
            classifier = clone(pipeline.named_steps["classifier"]).set_params(C=c)
            classifier.fit(fitted, y[fit_rows], sample_weight=weight[fit_rows])
            p = classifier.predict_proba(held)[:, 1]
            losses[j] += weighted_log_loss(y[held_rows], p, weight[held_rows]) / folds
    return losses


def choose_c(
    x: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray,
    features: list[str],
    categorical: list[str],
    params: LogisticParams,
    seed: int,
) -> float:
    """The C of the spec's grid with the lowest cross-validated log-loss (ties: the stronger penalty)."""
    grid = sorted(params.c_grid)
    pipeline = logistic_pipeline(features, categorical, params)
    losses = cv_losses(as_object_categories(x, categorical), y, weight, pipeline, grid, params.cv_folds, seed)
    return float(grid[int(np.argmin(losses))])


def fit_with_c(
    x: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray,
    features: list[str],
    categorical: list[str],
    params: LogisticParams,
    c: float,
) -> Pipeline:
    """The pipeline fitted on (x, y, weight) with the given C."""
    pipeline = logistic_pipeline(features, categorical, params).set_params(classifier__C=c)
    with threadpool_limits(limits=BLAS_THREADS):
        return pipeline.fit(as_object_categories(x, categorical), y, classifier__sample_weight=weight)


def fit_logistic_pipeline(
    x: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray,
    features: list[str],
    categorical: list[str],
    params: LogisticParams,
    seed: int,
) -> tuple[Pipeline, float]:
    """(fitted pipeline, chosen C): C by seeded stratified CV on (x, y, weight), then a fit on all of it."""
    with threadpool_limits(limits=BLAS_THREADS):
        c = choose_c(x, y, weight, features, categorical, params, seed)
        return fit_with_c(x, y, weight, features, categorical, params, c), c
