"""A small, seeded CAR snapshot that meets `config/car_contract.yaml`: for tests and examples.

The full demo generator with realistic movements lives in `demo_car`; this is the minimal frame
the ingest and Data Checker 1 tests build their good and bad cases from.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

REGIONS = ("north", "south", "east", "west")
TIERS = ("basic", "standard", "premium")


def sample_car(
    customers: int,
    snapshot_date: dt.date,
    seed: int = 0,
    first_id: int = 0,
    regions: tuple[str, ...] = REGIONS,
) -> pd.DataFrame:
    """`customers` rows (ids `c<first_id>`... in order) for one snapshot, every contract column valid."""
    rng = np.random.default_rng(seed)
    n = customers
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(first_id, first_id + n)],
            "snapshot_date": pd.Timestamp(snapshot_date),
            "tenure_months": rng.integers(0, 120, n),
            "age": rng.integers(18, 90, n),
            "region": rng.choice(list(regions), n),
            "base_tier": rng.choice(list(TIERS), n),
            "addon_sports": rng.integers(0, 2, n),
            "addon_movies": rng.integers(0, 2, n),
            "addon_kids": rng.integers(0, 2, n),
            "viewing_hours": rng.gamma(2.0, 10.0, n).round(2),
            "sessions": rng.poisson(20, n),
            "devices": rng.integers(1, 5, n),
            "arpu": rng.normal(30, 5, n).clip(0).round(2),
            "late_payments": rng.poisson(0.2, n),
            "support_calls": rng.poisson(0.5, n),
            "campaign_contacts": rng.poisson(1.0, n),
        }
    )


def month_ends(first: dt.date, months: int) -> list[dt.date]:
    """`months` consecutive month-end dates starting with the month of `first`."""
    return [d.date() for d in pd.date_range(pd.Timestamp(first), periods=months, freq="ME")]


LABEL = "bought"
"""The label column of `evolving_car`: 0/1 where known, NULL in the latest snapshot."""


def _take_up(rng: np.random.Generator, held: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Next month's add-on holding: heavy viewers take it up far more often; some holders cancel."""
    take = rng.random(len(held)) < np.where(hours > 25, 0.45, 0.04)
    keep = rng.random(len(held)) < 0.8
    return np.where(held == 1, keep, take).astype(np.int64)


def evolving_car(
    customers: int, months: list[dt.date], new_customers: int = 0, seed: int = 0
) -> list[pd.DataFrame]:
    """A real export in miniature: one frame per snapshot of the same customers, with learnable outcomes.

    `addon_sports` at t + 1 depends on `viewing_hours` at t (a movement target); the label column
    `bought` (role label: 0/1, known up to a date) depends on the same row's `viewing_hours` and is
    NULL throughout the latest snapshot, where its outcome is not known yet. `new_customers` appear
    only in the latest snapshot (ids after the others).
    """
    rng = np.random.default_rng(seed)
    frames, held = [], None
    for k, day in enumerate(months):
        latest = k == len(months) - 1
        n = customers + (new_customers if latest else 0)
        frame = sample_car(n, day, seed=seed * 1000 + k)
        if held is not None:
            frame.loc[: customers - 1, "addon_sports"] = held
        hours = frame["viewing_hours"].to_numpy()
        held = _take_up(rng, frame["addon_sports"].to_numpy()[:customers], hours[:customers])
        bought = (rng.random(n) < np.where(hours > 30, 0.6, 0.05)).astype(np.int64)
        frame[LABEL] = pd.array([None] * n if latest else bought, dtype="Int64")
        frames.append(frame)
    return frames
