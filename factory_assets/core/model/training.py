"""Challenger fits per family: CatBoost and a regularised logistic regression.

CatBoost stops early on the validation split and predicts from a `Pool`; the logistic family
(`core.model.logistic`) chooses C by seeded cross-validation on the train split. A refit
(`refit_family`) then fits the same family again on train + validation with what the first fit
found: CatBoost's iteration count, the logistic C.

Categorical features go to CatBoost as `category` columns of strings, missing values as
`MISSING_CATEGORY`; numeric features as float64 with NaN. Fits are seeded and use a fixed thread
count, so the same sample and parameters give the same model (and the same content hash in the
model store).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool

from factory_assets.core.model.logistic import (
    Design,
    as_object_categories,
    fit_logistic_pipeline,
    fit_with_c,
)
from factory_assets.core.specs import Family, ModelParams

if TYPE_CHECKING:
    from factory_assets.core.prep.prepared import ModelSamples

MISSING_CATEGORY = "__missing__"
SPLITS = ("train", "validation", "test")
POOL_SPLITS = ("train", "validation")
"""The rows a refit learns from: everything but the out-of-time test."""
REFERENCE_ROWS = 20_000
"""Rows of the drift reference sample stored with each model (seeded, from the train split)."""


class TrainingDataError(ValueError):
    """A sample that cannot train or evaluate a model (an empty split, a single class)."""


@dataclass(frozen=True)
class TrainedModel:
    """A fitted challenger with what is needed to score and to register it."""

    model: Any
    """A `CatBoostClassifier` or a scikit-learn `Pipeline` (the logistic family)."""
    features: list[str]
    categorical: list[str]
    params: dict[str, Any]
    best_iteration: int
    family: Family = "catboost"


def catboost_params(params: ModelParams) -> dict[str, Any]:
    """CatBoost constructor arguments from the spec's `model` block (seeded, fixed threads)."""
    return {
        "iterations": params.iterations,
        "learning_rate": params.learning_rate,
        "depth": params.depth,
        "l2_leaf_reg": params.l2_leaf_reg,
        "one_hot_max_size": params.one_hot_max_size,
        "max_ctr_complexity": params.max_ctr_complexity,
        "early_stopping_rounds": params.early_stopping_rounds,
        "random_seed": params.seed,
        "thread_count": params.thread_count,
        "loss_function": "Logloss",
        "use_best_model": True,
        "allow_writing_files": False,
        "verbose": False,
    }


def model_frame(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """The feature columns as CatBoost wants them: float64 numerics, categoricals as `category` dtype.

    Categories are the values as strings, missing ones `MISSING_CATEGORY`. CatBoost hashes the
    category strings either way, so the model is the same as from object strings; a `category`
    column is hashed once per level instead of once per row (several times faster on populations).
    """
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise KeyError(f"feature columns {missing} are not in the frame")
    columns: dict[str, object] = {}
    for name in features:
        column = frame[name]
        if name in categorical:
            columns[name] = _categories(column)
        elif column.dtype == np.float64:
            columns[name] = column.to_numpy()
        else:
            columns[name] = pd.to_numeric(column).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _categories(column: pd.Series) -> pd.Categorical:
    values = column.astype("string").fillna(MISSING_CATEGORY)
    codes, levels = pd.factorize(values, sort=True)
    categories = pd.Index(np.asarray(levels, dtype=object), dtype=object)
    return pd.Categorical.from_codes(codes, categories=categories)


def make_pool(
    frame: pd.DataFrame, features: list[str], categorical: list[str], with_label: bool = False
) -> Pool:
    """A CatBoost `Pool` of `frame` (label from `target`, weight from `weight` when `with_label`)."""
    data = model_frame(frame, features, categorical)
    cat = [c for c in features if c in categorical]
    if not with_label:
        return Pool(data, cat_features=cat)
    weight = frame["weight"].to_numpy(dtype=float) if "weight" in frame.columns else None
    return Pool(data, label=frame["target"].to_numpy(dtype=int), weight=weight, cat_features=cat)


def split_frame(samples: ModelSamples, split: str) -> pd.DataFrame:
    """The rows of one split of the sample."""
    return samples.frame[samples.frame["split"] == split]


def check_trainable(samples: ModelSamples, cell: str) -> None:
    """Fail, naming the cell and split, when a split is empty or holds a single class."""
    for split in SPLITS:
        part = split_frame(samples, split)
        classes = sorted(int(v) for v in part["target"].dropna().unique())
        if classes != [0, 1]:
            found = "no rows" if part.empty else f"only class {classes} in {len(part)} rows"
            raise TrainingDataError(
                f"{cell}: the {split} split holds {found}; a model needs positives and negatives in "
                f"train, validation and test"
            )


def fit_challenger(samples: ModelSamples, params: ModelParams, cell: str) -> TrainedModel:
    """Fit CatBoost on the train split with early stopping on the validation split."""
    check_trainable(samples, cell)
    features, categorical = list(samples.features), list(samples.categorical)
    arguments = catboost_params(params)
    model = CatBoostClassifier(**arguments)
    model.fit(
        make_pool(split_frame(samples, "train"), features, categorical, with_label=True),
        eval_set=make_pool(split_frame(samples, "validation"), features, categorical, with_label=True),
    )
    return TrainedModel(model, features, categorical, arguments, int(model.get_best_iteration() or 0))


def fit_logistic(samples: ModelSamples, params: ModelParams, cell: str) -> TrainedModel:
    """Fit the logistic family on the train split, C chosen by seeded CV there (validation untouched)."""
    check_trainable(samples, cell)
    features, categorical = list(samples.features), list(samples.categorical)
    design = logistic_design(split_frame(samples, "train"), features, categorical)
    pipeline, chosen_c = fit_logistic_pipeline(design, params.logistic, params.seed)
    arguments = {**params.logistic.model_dump(), "C": chosen_c, "seed": params.seed}
    return TrainedModel(pipeline, features, categorical, arguments, 0, "logistic")


def logistic_design(rows: pd.DataFrame, features: list[str], categorical: list[str]) -> Design:
    """A logistic fit's rows from sample rows: the model frame, the target, the weights (1 if none)."""
    weight = rows["weight"].to_numpy(dtype=float) if "weight" in rows.columns else np.ones(len(rows))
    x = as_object_categories(model_frame(rows, features, categorical), categorical)
    return Design(x, rows["target"].to_numpy(dtype=int), weight, features, categorical)


FITTERS = {"catboost": fit_challenger, "logistic": fit_logistic}
"""How each family is fitted: `(samples, params, cell) -> TrainedModel`."""


def fit_family(samples: ModelSamples, family: Family, params: ModelParams, cell: str) -> TrainedModel:
    """Fit one family's challenger on the sample's train split."""
    return FITTERS[family](samples, params, cell)


def pool_frame(samples: ModelSamples) -> pd.DataFrame:
    """The train and validation rows of the sample: what a refit learns from."""
    return samples.frame[samples.frame["split"].isin(POOL_SPLITS)]


def refit_catboost(samples: ModelSamples, first: TrainedModel) -> TrainedModel:
    """CatBoost on train + validation with the tree count early stopping found (no early stopping)."""
    trees = first.best_iteration + 1
    arguments = {**first.params, "iterations": trees, "use_best_model": False}
    arguments.pop("early_stopping_rounds", None)
    model = CatBoostClassifier(**arguments)
    model.fit(make_pool(pool_frame(samples), first.features, first.categorical, with_label=True))
    return TrainedModel(model, first.features, first.categorical, arguments, first.best_iteration, "catboost")


def refit_logistic(samples: ModelSamples, first: TrainedModel, params: ModelParams) -> TrainedModel:
    """The logistic pipeline on train + validation with the C the train split's CV chose."""
    design = logistic_design(pool_frame(samples), first.features, first.categorical)
    pipeline = fit_with_c(design, params.logistic, float(first.params["C"]))
    return TrainedModel(pipeline, first.features, first.categorical, dict(first.params), 0, "logistic")


def refit_family(samples: ModelSamples, first: TrainedModel, params: ModelParams) -> TrainedModel:
    """The family of `first` fitted again on train + validation with the settings `first` found."""
    if first.family == "catboost":
        return refit_catboost(samples, first)
    return refit_logistic(samples, first, params)


def predict_sample_scale(
    model: object, frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> np.ndarray:
    """Model probabilities on the training-sample scale (before the beta correction and calibration).

    Works for every family: CatBoost predicts from a `Pool`, a scikit-learn pipeline from the
    feature frame with object-string categoricals.
    """
    if frame.empty:
        return np.empty(0)
    if isinstance(model, CatBoostClassifier):
        return model.predict_proba(make_pool(frame, features, categorical))[:, 1]
    data = as_object_categories(model_frame(frame, features, categorical), categorical)
    return model.predict_proba(data)[:, 1]


def population_reference(
    population: pd.DataFrame, features: list[str], seed: int, rows: int = REFERENCE_ROWS
) -> pd.DataFrame:
    """A seeded sample of the population the model scores on the day it is trained: the drift reference.

    Drift then measures how the scoring population moved since training. A sample of the training
    window instead would mix up to a year of trending features (tenure, filling history windows) and
    make stable data look drifted, firing the retrain trigger on every run.
    """
    if population.empty:
        raise ValueError("the scoring population is empty: no drift reference can be stored")
    picked = population.sample(n=rows, random_state=seed) if len(population) > rows else population
    return picked[["snapshot_date", *features]].reset_index(drop=True)
