"""The logistic family: a regularised logistic regression as a scikit-learn pipeline.

Numerics are imputed with the median (plus a missing-indicator column where values were missing)
and standardised; categoricals (strings, missing as `MISSING_CATEGORY`, as `model_frame` gives
them) are one-hot encoded, levels rarer than `min_category_share` of the training rows grouped as
'infrequent' and levels unseen in training ignored at scoring. C is chosen by a grid search over
the spec's `c_grid` with shuffled, seeded stratified folds on the training split (log-loss, with the
sample weights), then the pipeline is refitted on the whole training split with that C. lbfgs is
deterministic, so the same sample and spec give the same coefficients (and the same content hash).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from factory_assets.core.specs import LogisticParams


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
    classifier = LogisticRegression(C=1.0, max_iter=params.max_iter, solver="lbfgs")
    return Pipeline([("columns", columns), ("classifier", classifier)])


def as_object_categories(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """`model_frame`'s output with categoricals as object strings (what the one-hot encoder learns)."""
    return frame.assign(**{c: frame[c].astype(object) for c in categorical if c in frame.columns})


def fit_logistic_pipeline(
    x: pd.DataFrame,
    y: np.ndarray,
    weight: np.ndarray,
    features: list[str],
    categorical: list[str],
    params: LogisticParams,
    seed: int,
) -> tuple[Pipeline, float]:
    """(fitted pipeline, chosen C): C by seeded stratified CV on (x, y, weight), then a refit on all."""
    folds = StratifiedKFold(n_splits=params.cv_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(
        logistic_pipeline(features, categorical, params),
        {"classifier__C": list(params.c_grid)},
        scoring="neg_log_loss",
        cv=folds,
        refit=True,
        n_jobs=1,
    )
    search.fit(as_object_categories(x, categorical), y, classifier__sample_weight=weight)
    return search.best_estimator_, float(search.best_params_["classifier__C"])
