"""Feature drift between a champion's reference sample and today's scoring population.

The numbers that drive retraining are computed here in numpy: the population stability index
(PSI) per numeric feature on quantile bins of the reference (missing values are a bin of their
own), and PSI on category shares. The drift share is the share of features whose PSI reaches the
spec's `retrain.feature_psi`. Evidently renders the human-readable report from a fixed-size seeded
sample (it is slow on full populations), with an explicit data definition and PSI pinned for both
column types so that its verdicts use the same measure.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factory_assets.core.model.training import MISSING_CATEGORY, model_frame

PSI_BINS = 10
SHARE_FLOOR = 1e-4
"""Empty bins get this share so that PSI stays finite."""
EVIDENTLY_ROWS = 5_000
"""Rows per side in the Evidently report (seeded sample)."""
EVIDENTLY_COLUMNS = 20
"""Features in the Evidently report: those with the largest PSI (rendering costs ~0.3 s per column)."""


@dataclass(frozen=True)
class DriftSummary:
    """PSI per feature, the drifted features (largest PSI first) and their share."""

    psi: dict[str, float]
    drifted: list[str]
    drift_share: float
    threshold: float


def _psi_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    ref = np.maximum(reference / reference.sum(), SHARE_FLOOR)
    cur = np.maximum(current / current.sum(), SHARE_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI on the reference's quantile bins plus one bin for missing values."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError("PSI needs rows on both sides")
    present = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else []

    def counts(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        binned = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
        return np.append(binned, missing.sum()).astype(float)

    return _psi_from_counts(counts(reference), counts(current))


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI on category shares (levels of either side; missing is a level of its own)."""
    ref = pd.Series(reference, dtype="string").fillna(MISSING_CATEGORY)
    cur = pd.Series(current, dtype="string").fillna(MISSING_CATEGORY)
    if ref.empty or cur.empty:
        raise ValueError("PSI needs rows on both sides")
    levels = sorted(set(ref) | set(cur))
    ref_counts = ref.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=float)
    cur_counts = cur.value_counts().reindex(levels, fill_value=0).to_numpy(dtype=float)
    return _psi_from_counts(ref_counts, cur_counts)


def feature_psi(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], categorical: list[str]
) -> dict[str, float]:
    """PSI of every feature, current population against the reference sample."""
    return {
        name: (
            psi_categorical(reference[name].to_numpy(), current[name].to_numpy())
            if name in categorical
            else psi_numeric(
                pd.to_numeric(reference[name]).astype("Float64").to_numpy(dtype=float, na_value=np.nan),
                pd.to_numeric(current[name]).astype("Float64").to_numpy(dtype=float, na_value=np.nan),
            )
        )
        for name in features
    }


def summarise(psi: dict[str, float], threshold: float) -> DriftSummary:
    """Which features drift (PSI >= threshold), largest first, and their share of all features."""
    if not psi:
        raise ValueError("no features to measure drift on")
    drifted = sorted((n for n, v in psi.items() if v >= threshold), key=lambda n: (-psi[n], n))
    return DriftSummary(psi, drifted, len(drifted) / len(psi), threshold)


def report_features(summary: DriftSummary, limit: int = EVIDENTLY_COLUMNS) -> list[str]:
    """The features the HTML report shows: the `limit` largest PSI values, largest first."""
    return sorted(summary.psi, key=lambda name: (-summary.psi[name], name))[:limit]


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=min(rows, len(frame)), random_state=seed) if len(frame) > rows else frame


class DriftReportError(RuntimeError):
    """Evidently could not render the drift report; the message names the file and the features."""


def _no_common_values_page(summary: DriftSummary, left_out: list[str]) -> str:
    """A plain HTML page saying why the report shows no feature, with the PSI of those left out."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{summary.psi[name]:.3f}</td></tr>" for name in left_out
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title></head><body>"
        "<h1>Drift report</h1><p>No drift chart: no feature has values on both sides of the "
        "comparison (reference and current samples), so Evidently has nothing to compare. This "
        "happens when every customer is new (re-keyed ids: no history) or a column is new. The PSI "
        "below (missing values are a bin of their own) still drives the retrain trigger.</p>"
        f"<table><tr><th>feature</th><th>PSI</th></tr>{rows}</table></body></html>"
    )


def write_evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str],
    summary: DriftSummary,
    drift_share_threshold: float,
    path: Path,
    seed: int,
) -> Path:
    """Render Evidently's data-drift report on seeded samples of both sides to `path` (HTML).

    It shows the features with the largest PSI (`report_features`) among those with a value on
    both sides (Evidently refuses an all-missing column, and with no column at all it divides by
    zero); the full PSI table is in the drift record. With no such feature the page says so and
    lists the PSI of the largest. PSI is pinned for numeric and categorical columns with the spec's
    per-feature threshold, so the report's verdicts use the measure behind the retrain trigger (on
    its sample, with its own bins). An error inside Evidently becomes `DriftReportError` naming the
    file and the features.
    """
    ref_sample = _sample(reference, EVIDENTLY_ROWS, seed)
    cur_sample = _sample(current, EVIDENTLY_ROWS, seed)
    ranked = report_features(summary, limit=len(summary.psi))
    # PSI (the decision) already bins missing values; the report shows only comparable columns.
    usable = [f for f in ranked if ref_sample[f].notna().any() and cur_sample[f].notna().any()]
    features = usable[:EVIDENTLY_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".html.tmp")
    if not features:
        temp.write_text(_no_common_values_page(summary, ranked[:EVIDENTLY_COLUMNS]), encoding="utf-8")
        temp.replace(path)
        return path
    try:
        _render_evidently(ref_sample, cur_sample, features, categorical, summary, drift_share_threshold, temp)
    except Exception as exc:  # a third-party renderer: say which report and columns it failed on
        temp.unlink(missing_ok=True)
        raise DriftReportError(
            f"Evidently could not render the drift report {path} for feature(s) {features}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    temp.replace(path)
    return path


def _render_evidently(
    ref_sample: pd.DataFrame,
    cur_sample: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    summary: DriftSummary,
    drift_share_threshold: float,
    target: Path,
) -> None:
    """Evidently's data-drift preset on `features` of both samples, saved as HTML to `target`."""
    from evidently import DataDefinition, Dataset, Report  # slow import: only when a report is due
    from evidently.presets import DataDriftPreset

    numeric = [f for f in features if f not in categorical]
    cats = [f for f in features if f in categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=cats)
    ref = model_frame(ref_sample, features, categorical)
    cur = model_frame(cur_sample, features, categorical)
    preset = DataDriftPreset(
        columns=features,
        num_method="psi",
        cat_method="psi",
        threshold=summary.threshold,
        drift_share=drift_share_threshold,
    )
    snapshot = Report([preset]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    snapshot.save_html(str(target))
