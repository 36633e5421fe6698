"""Seeded synthetic training frames and model samples with real signal: for tests and the CatBoost bench.

`synthetic_frame` looks like a prepared training frame (one row per customer and snapshot, numeric
and categorical features with missing values, a target that depends on them, NULL targets on the
latest snapshot); `synthetic_samples` turns it into `ModelSamples` the way the sampling stage does
(out-of-time test on the latest labelled snapshot, negatives down-sampled in train and validation).
`shift` moves the feature distributions, to inject drift.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from factory_assets.core.prep.prepared import ModelSamples

REGIONS = np.array(["north", "south", "east", "west", "capital"])
TIERS = np.array(["basic", "standard", "premium"])
NOISE_FEATURES = 6
CATEGORICAL = ["region", "base_tier"]


def month_ends(first: dt.date, count: int) -> list[dt.date]:
    """`count` consecutive month-end dates from the month of `first`."""
    return [d.date() for d in pd.date_range(first, periods=count, freq="ME")]


def _features(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    hours = rng.gamma(2.0, 10.0, n) * (1 + shift)
    hours[rng.random(n) < 0.05] = np.nan
    age = rng.integers(18, 80, n).astype(float) + 10 * shift
    age[rng.random(n) < 0.1] = np.nan
    region = rng.choice(REGIONS, n, p=[0.3, 0.2, 0.2, 0.2, 0.1] if shift == 0 else [0.1, 0.1, 0.2, 0.2, 0.4])
    region = np.where(rng.random(n) < 0.03, None, region)
    columns = {
        "tenure_months": rng.integers(0, 120, n).astype(float),
        "age": age,
        "viewing_hours": hours,
        "viewing_hours__delta1": rng.normal(0, 5, n) - 3 * shift,
        "sessions": rng.poisson(12 * (1 + shift), n).astype(float),
        "arpu": rng.normal(30, 8, n) + 5 * shift,
        "late_payments": rng.poisson(0.3, n).astype(float),
        "support_calls": rng.poisson(0.5 + shift, n).astype(float),
        "region": region,
        "base_tier": rng.choice(TIERS, n, p=[0.5, 0.3, 0.2]),
    }
    columns.update({f"noise_{i}": rng.normal(shift, 1, n) for i in range(NOISE_FEATURES)})
    return columns


def _logit(f: dict[str, np.ndarray], intercept: float) -> np.ndarray:
    hours = np.nan_to_num(f["viewing_hours"], nan=5.0)
    return (
        intercept
        - 0.04 * hours
        - 0.08 * f["viewing_hours__delta1"]
        + 0.6 * f["late_payments"]
        + 0.35 * f["support_calls"]
        - 0.01 * f["tenure_months"]
        + 0.6 * (f["base_tier"] == "basic")
        + 0.5 * (f["region"] == "capital")
    )


def synthetic_frame(
    customers: int, snapshots: list[dt.date], seed: int, shift: float = 0.0, intercept: float = -1.5
) -> pd.DataFrame:
    """A training-frame-like table; the latest snapshot's target is NULL (not yet observable)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, snapshot in enumerate(snapshots):
        f = _features(rng, customers, shift)
        target = (rng.random(customers) < 1 / (1 + np.exp(-_logit(f, intercept)))).astype(float)
        if i == len(snapshots) - 1:
            target[:] = np.nan
        ids = [f"c{j:06d}" for j in range(customers)]
        parts.append(pd.DataFrame({"customer_id": ids, "snapshot_date": snapshot, "target": target, **f}))
    frame = pd.concat(parts, ignore_index=True)
    frame["target"] = frame["target"].astype("Int64")
    return frame


def feature_names(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a synthetic frame, in order."""
    return [c for c in frame.columns if c not in ("customer_id", "snapshot_date", "target")]


def synthetic_samples(
    frame: pd.DataFrame, seed: int, negatives_per_positive: float = 4.0, validation_share: float = 0.2
) -> ModelSamples:
    """Split and balance a synthetic frame: test = latest labelled snapshot (not down-sampled)."""
    rng = np.random.default_rng(seed)
    labelled = frame[frame["target"].notna()].copy()
    dates = sorted(labelled["snapshot_date"].unique())
    is_test = (labelled["snapshot_date"] == dates[-1]).to_numpy()
    pool = labelled[~is_test]
    positives = int((pool["target"] == 1).sum())
    negatives = int((pool["target"] == 0).sum())
    beta = min(1.0, negatives_per_positive * positives / max(negatives, 1))
    keep = (pool["target"] == 1).to_numpy() | (rng.random(len(pool)) < beta)
    pool = pool[keep].assign(
        split=np.where(rng.random(int(keep.sum())) < validation_share, "validation", "train")
    )
    test = labelled[is_test].assign(split="test")
    samples = pd.concat([pool, test], ignore_index=True).assign(weight=1.0)
    samples["target"] = samples["target"].astype(int)
    return ModelSamples(
        frame=samples,
        features=feature_names(frame),
        categorical=list(CATEGORICAL),
        beta=float(beta),
        test_snapshots=[dates[-1]],
        first_snapshot=dates[0],
        last_snapshot=dates[-1],
        cross_sectional=False,
    )
