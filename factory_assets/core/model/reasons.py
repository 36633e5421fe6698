"""Reason codes: each customer's top contributing features, per model family.

A contribution is on the raw model's log-odds scale, the score before the beta correction and the
calibration (`core.model.calibration`): the beta correction only shifts the log-odds by a constant,
and calibration is a monotone map of the whole score, so neither belongs to a feature.

- CatBoost: SHAP values (`get_feature_importance(type="ShapValues")`), one per source feature
  (a categorical is one feature); per row they sum, with the expected value, to the raw log-odds.
- Logistic: coefficient x transformed value (standardised numerics, missing indicators, one-hot
  levels), summed back to the source feature; per row they sum, with the intercept, to the
  log-odds. So a numeric contributes relative to its training mean, a categorical by its level's
  coefficient.

Reasons are stored wide, slot k (1 = largest absolute contribution) in `reason_<k>_feature`,
`reason_<k>_value` (the customer's value as the model saw it, as text; null when missing) and
`reason_<k>_contribution`: flat columns that Parquet, DuckDB and CSV all hold alike. A feature that
contributes exactly nothing is no reason: its slot stays null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from sklearn.pipeline import Pipeline

from factory_assets.core.model.logistic import as_object_categories
from factory_assets.core.model.reason_columns import reason_column, reason_columns, reason_dtype
from factory_assets.core.model.training import MISSING_CATEGORY, make_pool, model_frame

CHUNK_ROWS = 50_000
"""Rows explained at a time: the full contribution matrix of a population is never held at once."""


@dataclass(frozen=True)
class Contributions:
    """Per-row, per-feature contributions to the raw log-odds, and the per-row base (bias) they start from."""

    values: np.ndarray
    """Shape (rows, features), in the order of `features`."""
    base: np.ndarray
    """Shape (rows,): CatBoost's expected value, or the logistic intercept."""
    features: list[str]


def catboost_contributions(
    model: CatBoostClassifier, frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> Contributions:
    """SHAP values of every row (the last column CatBoost returns, the expected value, is the base)."""
    threads = model.get_params().get("thread_count", -1)
    shap = model.get_feature_importance(
        make_pool(frame, features, categorical), type="ShapValues", thread_count=threads
    )
    shap = np.asarray(shap, dtype=float)
    return Contributions(shap[:, :-1], shap[:, -1], features)


def _one_hot_widths(block: object) -> list[int]:
    """Output columns per input feature of a fitted categorical block (infrequent levels are one column).

    The block is a `OneHotEncoder` (models trained before decision 41) or a pipeline ending in one.
    """
    encoder = block.steps[-1][1] if isinstance(block, Pipeline) else block
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(encoder.categories_)
    return [
        len(levels) - (len(rare) - 1 if rare is not None else 0)
        for levels, rare in zip(encoder.categories_, infrequent, strict=True)
    ]


def transformed_sources(pipeline: Pipeline, features: list[str], categorical: list[str]) -> list[str]:
    """The source feature of every column the logistic pipeline's transformer outputs, in order.

    Numerics give their scaled column, then one missing indicator per feature that had missing
    values in training; categoricals give one column per kept level (`core.model.logistic`).
    """
    columns = pipeline.named_steps["columns"]
    numeric = [f for f in features if f not in categorical]
    cats = [f for f in features if f in categorical]
    sources: dict[str, list[str]] = {"numeric": [], "categorical": []}
    if numeric:
        imputer = columns.named_transformers_["numeric"].named_steps["impute"]
        flagged = imputer.indicator_.features_ if imputer.indicator_ is not None else []
        sources["numeric"] = numeric + [numeric[int(i)] for i in flagged]
    if cats:
        widths = _one_hot_widths(columns.named_transformers_["categorical"])
        sources["categorical"] = [f for f, width in zip(cats, widths, strict=True) for _ in range(width)]
    ordered: list[str] = []
    for name, span in columns.output_indices_.items():
        width = span.stop - span.start
        if width != len(sources.get(name, [])):
            raise ValueError(
                f"logistic pipeline block '{name}' outputs {width} columns, but its features map to "
                f"{len(sources.get(name, []))}: cannot attribute its coefficients to features"
            )
        ordered.extend(sources.get(name, []))
    return ordered


def logistic_contributions(
    pipeline: Pipeline, frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> Contributions:
    """Coefficient x transformed value per column, summed back to each source feature."""
    data = as_object_categories(model_frame(frame, features, categorical), categorical)
    transformed = np.asarray(pipeline.named_steps["columns"].transform(data), dtype=float)
    classifier = pipeline.named_steps["classifier"]
    sources = transformed_sources(pipeline, features, categorical)
    position = {name: i for i, name in enumerate(features)}
    to_feature = np.zeros((len(sources), len(features)))
    to_feature[np.arange(len(sources)), [position[s] for s in sources]] = 1.0
    values = (transformed * classifier.coef_[0]) @ to_feature
    base = np.full(len(frame), float(classifier.intercept_[0]))
    return Contributions(values, base, features)


def contributions(
    model: object, frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> Contributions:
    """The contributions of `frame`'s rows under `model` (a CatBoost model or the logistic pipeline)."""
    if isinstance(model, CatBoostClassifier):
        return catboost_contributions(model, frame, features, categorical)
    if isinstance(model, Pipeline):
        return logistic_contributions(model, frame, features, categorical)
    raise TypeError(f"no reason codes for a model of type {type(model).__name__}")


def value_text(value: object) -> str | None:
    """A feature value as the model saw it, as text: integral numbers without '.0', 6 significant digits."""
    if value is None or value == MISSING_CATEGORY:
        return None
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    if not np.isfinite(number):
        return None
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.6g}"


def _slot_values(seen: pd.DataFrame, names: list[str], chosen: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The text of each row's value of the feature at `chosen` (None where no reason is `present`)."""
    text = np.full(len(chosen), None, dtype=object)
    for position in np.unique(chosen[present]):
        rows = np.flatnonzero(present & (chosen == position))
        values = seen[names[int(position)]].to_numpy(dtype=object)[rows]
        text[rows] = [value_text(v) for v in values]
    return text


def top_reasons(found: Contributions, seen: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The wide reason columns of every row of `seen` (the model frame of the explained rows).

    Slot k holds the k-th largest absolute contribution (ties by feature order); a slot past the
    model's feature count, or whose contribution is exactly zero, is null.
    """
    n, width = found.values.shape
    order = np.argsort(-np.abs(found.values), axis=1, kind="stable")
    names = np.asarray(found.features, dtype=object)
    columns: dict[str, object] = {}
    for k in range(top_n):
        if k < width:
            chosen = order[:, k]
            contribution = found.values[np.arange(n), chosen]
            present = contribution != 0
            feature = np.where(present, names[chosen], None)
            value = _slot_values(seen, found.features, chosen, present)
        else:
            contribution, present = np.zeros(n), np.zeros(n, dtype=bool)
            feature = value = np.full(n, None, dtype=object)
        columns[reason_column(k + 1, "feature")] = pd.array(feature, dtype="string")
        columns[reason_column(k + 1, "value")] = pd.array(value, dtype="string")
        columns[reason_column(k + 1, "contribution")] = np.where(present, contribution, np.nan)
    return pd.DataFrame(columns, index=seen.index)


def reason_codes(
    model: object,
    frame: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    top_n: int,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """The reason columns of every row of `frame` (same index), explained `chunk_rows` at a time."""
    parts = []
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        found = contributions(model, chunk, features, categorical)
        parts.append(top_reasons(found, model_frame(chunk, features, categorical), top_n))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=reason_dtype(c)) for c in reason_columns(top_n)})
    return pd.concat(parts)
