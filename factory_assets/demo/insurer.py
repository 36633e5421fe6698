"""A seeded insurer export: monthly renewal cohorts, a lapse label known only for past months.

Unlike the media demo, each monthly snapshot holds a different set of customers (the policies due
for renewal that month), the customer key is `policy_no`, the date is a `YYYYMM` month, markets
are country codes, and everything arrives as one `;`-delimited CSV export mapped onto the contract
by `examples/insurer/config/policies_mapping.yaml`. The label `lapsed` (did not renew) is known for
every month but the latest: that month's cohort is the one to score. `telematics_score` exists only
for motor policies and only from the fourth month on (NULL throughout the earlier snapshots).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

EXPORT_NAME = "policies.csv"
POLICY_TYPES = ("motor", "home", "travel")
CHANNELS = ("broker", "direct", "online")


@dataclass(frozen=True)
class InsurerConfig:
    """Markets (country code: policies due per month), months, first month and seed."""

    markets: dict[str, int] = field(default_factory=lambda: {"NL": 2400, "BE": 1600})
    months: int = 8
    start: dt.date = dt.date(2025, 1, 1)
    seed: int = 11


def _month(start: dt.date, offset: int) -> dt.date:
    index = start.year * 12 + start.month - 1 + offset
    return dt.date(index // 12, index % 12 + 1, 1)


def _cohort(rng: np.random.Generator, country: str, month: dt.date, size: int, offset: int) -> pd.DataFrame:
    """The policies of one country due for renewal in one month, with their lapse outcome."""
    policy_type = rng.choice(POLICY_TYPES, size=size, p=[0.5, 0.35, 0.15])
    channel = rng.choice(CHANNELS, size=size, p=[0.3, 0.3, 0.4])
    tenure = rng.poisson(4, size=size)
    price_change = rng.normal(4.0 + 0.6 * offset, 4.0, size=size).round(1)
    complaints = rng.poisson(0.15, size=size)
    claims = rng.poisson(0.3, size=size)
    monthly = rng.random(size) < 0.45
    premium = np.exp(rng.normal(6.0, 0.4, size=size)) * np.where(policy_type == "home", 1.3, 1.0)
    telematics = np.where(
        (policy_type == "motor") & (offset >= 3), rng.normal(60, 15, size=size).round(1), np.nan
    )
    logit = (
        -1.6
        + 0.11 * price_change
        + 0.7 * complaints
        - 0.18 * np.minimum(tenure, 10)
        + 0.5 * (channel == "online")
        + 0.45 * monthly
        + 0.3 * claims
        - 0.01 * np.nan_to_num(telematics - 60)
    )
    lapsed = (rng.random(size) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "policy_no": [f"{country}{offset:02d}{i:06d}" for i in range(size)],
            "country": country,
            "month": month.year * 100 + month.month,
            "policy_type": policy_type,
            "channel": channel,
            "tenure_years": tenure,
            "age": rng.integers(18, 90, size=size),
            "premium_eur": premium.round(2),
            "price_change_pct": price_change,
            "claims_12m": claims,
            "complaints": complaints,
            "pays_monthly": monthly.astype(int),
            "telematics_score": telematics,
            "lapsed": lapsed,
        }
    )


def insurer_export(config: InsurerConfig = InsurerConfig()) -> pd.DataFrame:
    """Every country's monthly cohorts; `lapsed` is NULL in the latest month (not known yet)."""
    rng = np.random.default_rng(config.seed)
    frames = []
    for offset in range(config.months):
        month = _month(config.start, offset)
        for country, size in config.markets.items():
            cohort = _cohort(rng, country, month, int(size * rng.uniform(0.9, 1.1)), offset)
            if offset == config.months - 1:
                cohort["lapsed"] = pd.NA
            frames.append(cohort)
    export = pd.concat(frames, ignore_index=True)
    export["lapsed"] = export["lapsed"].astype("Int64")
    return export


def write_insurer_export(folder: Path, config: InsurerConfig = InsurerConfig()) -> Path:
    """Write the export as `<folder>/policies.csv` (`;`-delimited), atomically; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EXPORT_NAME
    temp = folder / f".{EXPORT_NAME}.tmp"
    insurer_export(config).to_csv(temp, sep=";", index=False, encoding="utf-8")
    temp.replace(path)
    return path
