"""The models of `bench_quality.py`: the factory's defaults and the two baselines, each scoring the same test.

- factory: the dataset's CAR through the factory's own preparation (`build_training_frame`,
  `build_model_samples` with the spec's defaults: cleaning, row budget, de-trending) and its own
  training (`choose_family`: every family, the choice on validation, the refit, the calibrator).
  Also reported: the winner's first fit (train split only), to show what the refit changes.
- logistic_tuned: scikit-learn's logistic regression (median imputation with missing indicators
  and standardisation for numerics, one-hot for categoricals), C from 15 values 1e-5 .. 1e2 by 5
  stratified folds on AUC, trained on every labelled row of the factory's training snapshots (no
  down-sampling, no de-trending), on the columns the factory's cleaning kept: ID-like, constant,
  mostly missing and leaking columns are dropped, as a data scientist would drop them (the
  dropped ones are listed per dataset).
- catboost_defaults: CatBoost with the library's defaults (1,000 iterations, its own learning
  rate, no early stopping; seed 0, two threads) on the same rows and columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from factory_assets.core.model import metrics
from factory_assets.core.model.families import choose_family
from factory_assets.core.model.training import make_pool, model_frame, predict_sample_scale, split_frame
from factory_assets.core.names import Table
from factory_assets.core.prep import prepared
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

C_GRID = np.logspace(-5, 2, 15)


@dataclass(frozen=True)
class Scored:
    """One model's test predictions: `rank` orders the customers, `probability` is the released one."""

    model: str
    rank: np.ndarray
    probability: np.ndarray
    fit_seconds: float
    detail: str = ""


@dataclass(frozen=True)
class Rows:
    """Training rows and test rows (in the factory's test order) with the candidate columns."""

    train: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    categorical: list[str]


def factory_models(
    warehouse: Warehouse, market: str, spec: ModelSpec
) -> tuple[list[Scored], prepared.ModelSamples]:
    """The factory's stored model (refitted winner) and its first fit, on the sample's test split."""
    samples = prepared.load_model_samples(warehouse, market, spec.name)
    started = time.perf_counter()
    choice = choose_family(samples, spec.model, f"{market}/{spec.name}")
    seconds = time.perf_counter() - started
    test = split_frame(samples, "test")
    out = []
    for name, trained in (("factory", choice.final), ("factory_first_fit", choice.winner.trained)):
        raw = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
        probability = choice.winner.calibrator.apply(metrics.correct_probability(raw, samples.beta))
        validation = ", ".join(f"{c.trained.family} {c.validation['auc']:.3f}" for c in choice.candidates)
        detail = (
            f"{trained.family}, beta {samples.beta:.3g}, {choice.winner.calibrator.method}; "
            f"validation AUC {validation}"
        )
        fit = seconds if name == "factory" else seconds - choice.refit_seconds
        out.append(Scored(name, raw, probability, fit, detail))
    return out, samples


def dropped_columns(warehouse: Warehouse, market: str, spec: ModelSpec) -> list[str]:
    """The candidate columns the factory's cleaning dropped, with the rule: `name (rule)`."""
    decisions = warehouse.query(
        f"select variable, rule from {Table.VARIABLE_DECISIONS} "
        "where market = ? and model = ? and decision = 'drop' order by variable",
        [market, spec.name],
    )
    return [f"{v} ({r})" for v, r in zip(decisions["variable"], decisions["rule"], strict=True)]


def baseline_rows(warehouse: Warehouse, market: str, spec: ModelSpec, samples: prepared.ModelSamples) -> Rows:
    """Every labelled row of the factory's training snapshots and its test rows, with the kept features."""
    first_test = samples.test_snapshots[0]
    days = [
        d for d in prepared.labelled_snapshots(warehouse, market, spec.name) if samples.first_snapshot <= d
    ]
    read = {d: prepared.load_population(warehouse, market, spec.name, samples.features, d) for d in days}
    train = pd.concat([read[d] for d in days if d < first_test], ignore_index=True)
    test_keys = split_frame(samples, "test")[["customer_id", "snapshot_date"]]
    test_rows = pd.concat([read[d] for d in samples.test_snapshots], ignore_index=True)
    test = test_keys.merge(test_rows, on=["customer_id", "snapshot_date"], how="left", validate="one_to_one")
    return Rows(train, test, list(samples.features), list(samples.categorical))


def _logistic(features: list[str], categorical: list[str]) -> Pipeline:
    numeric = [f for f in features if f not in categorical]
    numbers = Pipeline(
        [("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]
    )
    columns = ColumnTransformer(
        [("numeric", numbers, numeric), ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    classifier = LogisticRegression(solver="newton-cholesky", max_iter=1000)
    return Pipeline([("columns", columns), ("classifier", classifier)])


def _objects(frame: pd.DataFrame, rows: Rows) -> pd.DataFrame:
    data = model_frame(frame, rows.features, rows.categorical)
    return data.assign(**{c: data[c].astype(object) for c in rows.categorical})


def logistic_tuned(rows: Rows, seed: int = 0) -> Scored:
    """Logistic regression, C by 5-fold stratified CV on AUC, on every labelled training row."""
    started = time.perf_counter()
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    search = GridSearchCV(
        _logistic(rows.features, rows.categorical),
        {"classifier__C": list(C_GRID)},
        scoring="roc_auc",
        cv=folds,
    )
    with threadpool_limits(limits=1):
        search.fit(_objects(rows.train, rows), rows.train["target"].to_numpy(dtype=int))
        p = search.predict_proba(_objects(rows.test, rows))[:, 1]
    chosen = search.best_params_["classifier__C"]
    return Scored("logistic_tuned", p, p, time.perf_counter() - started, f"C {chosen:.3g}")


def catboost_defaults(rows: Rows, seed: int = 0) -> Scored:
    """CatBoost with the library's defaults on every labelled training row."""
    started = time.perf_counter()
    model = CatBoostClassifier(random_seed=seed, thread_count=2, verbose=False, allow_writing_files=False)
    model.fit(make_pool(rows.train, rows.features, rows.categorical, with_label=True))
    p = model.predict_proba(make_pool(rows.test, rows.features, rows.categorical))[:, 1]
    return Scored("catboost_defaults", p, p, time.perf_counter() - started, f"{model.tree_count_} trees")
