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
