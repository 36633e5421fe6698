"""The demo CAR generator: a seeded, vectorised simulation of a media company's customer base.

One row per customer per monthly snapshot per market, with the contract columns
(`config/car_contract.yaml`), realistic extra columns and realistic dirt: a constant column
(`country_code`), an ID-like column (`account_ref`) and a leakage column (`cancel_request_flag`: 1
for 90% of the customers who have cancelled, that is who are gone from the next snapshot or the one
after, and for 0.3% of the others). Movements (churn, tier changes, add-ons) are driven by the
features, so models find real signal. Markets are generated month by month, keeping only state
arrays between months.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from factory_assets.core.specs import KEY_PATTERN
from factory_assets.demo.dynamics import MonthContext, advance, decide, joiner_count, observe
from factory_assets.demo.frame import snapshot_frame
from factory_assets.demo.io import FileFormat, snapshot_path, write_snapshot
from factory_assets.demo.population import Population, new_customers
from factory_assets.demo.profile import (
    DEFAULT_DRIFT,
    NO_DRIFT,
    DriftShift,
    MarketProfile,
    derive_profile,
    market_rng,
)

__all__ = [
    "DemoConfig",
    "DriftShift",
    "MarketProfile",
    "add_months",
    "generate_market",
    "snapshot_path",
    "write_landing",
    "write_snapshot",
]

log = logging.getLogger(__name__)
_MAX_MONTHS = 240
_WARM_UP_MONTHS = 3


def add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month `months` after (or before, if negative) the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class DemoConfig:
    """What to generate: markets with their opening sizes, the months, the seed and any drift."""

    markets: dict[str, int]
    """Market code -> customers at the first snapshot."""
    months: int = 24
    start: dt.date = dt.date(2024, 1, 1)
    seed: int = 7
    drift_from: dt.date | None = None
    """Inject drift from this snapshot on (features shift, movement rates change)..."""
    drift_markets: tuple[str, ...] = ()
    """...in these markets only."""
    drift: DriftShift = DEFAULT_DRIFT
    """What the drift changes (features and movement rates)."""
    file_format: FileFormat = "parquet"
    profiles: Mapping[str, MarketProfile] = field(default_factory=dict)
    """Explicit market profiles; a market without one gets a profile derived from code and seed."""

    def __post_init__(self) -> None:
        problems = [
            f"market code '{m}' must match {KEY_PATTERN.pattern}"
            for m in self.markets
            if not KEY_PATTERN.match(m)
        ]
        problems += [
            f"market '{m}' needs at least one customer, got {n}" for m, n in self.markets.items() if n < 1
        ]
        problems += [
            f"drift market '{m}' is not among the markets"
            for m in self.drift_markets
            if m not in self.markets
        ]
        if not 1 <= self.months <= _MAX_MONTHS:
            problems.append(f"months must be within 1..{_MAX_MONTHS}, got {self.months}")
        if self.start.day != 1 or (self.drift_from is not None and self.drift_from.day != 1):
            problems.append("start and drift_from must be the first of a month (snapshot dates)")
        if self.file_format not in ("parquet", "csv"):
            problems.append(f"file_format must be 'parquet' or 'csv', got '{self.file_format}'")
        if problems:
            raise ValueError("invalid DemoConfig: " + "; ".join(problems))

    def snapshot_dates(self) -> list[dt.date]:
        """Every snapshot date, the first of each month from `start`."""
        return [add_months(self.start, k) for k in range(self.months)]

    def profile(self, market: str) -> MarketProfile:
        """The given profile of `market`, else the one derived from its code and the seed."""
        return self.profiles.get(market) or derive_profile(market, self.seed)

    def drifts(self, market: str, snapshot: dt.date) -> bool:
        """Whether the snapshot of `market` is generated under drift."""
        return self.drift_from is not None and market in self.drift_markets and snapshot >= self.drift_from

    def shift(self, market: str, snapshot: dt.date) -> DriftShift:
        """The drift shift of one market's snapshot (`NO_DRIFT` outside the drift)."""
        return self.drift if self.drifts(market, snapshot) else NO_DRIFT


def _opening_customers(
    rng: np.random.Generator, profile: MarketProfile, config: DemoConfig, market: str
) -> tuple[Population, int]:
    """The customers of the first snapshot and the next free customer number.

    The opening stock lives a few unrecorded months first (leavers replaced one for one), so the
    first snapshot already looks settled: some customers serve notice, the frailest have gone.
    """
    pop = new_customers(rng, profile, config.markets[market], first_num=1, stock=True)
    next_num = 1 + len(pop)
    for back in range(_WARM_UP_MONTHS, 0, -1):
        ctx = MonthContext(-back, add_months(config.start, -back).month, NO_DRIFT)
        survivors = advance(rng, pop, decide(rng, pop, observe(rng, pop, profile, ctx), profile, ctx))
        joiners = len(pop) - len(survivors)
        pop = survivors.extend(new_customers(rng, profile, joiners, next_num, stock=False))
        next_num += joiners
    return pop, next_num


def generate_market(config: DemoConfig, market: str) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Snapshots of one market in date order, month by month (bounded memory)."""
    if market not in config.markets:
        raise ValueError(f"market '{market}' is not in the DemoConfig markets {sorted(config.markets)}")
    profile = config.profile(market)
    rng = market_rng(config.seed, market, 1)
    pop, next_num = _opening_customers(rng, profile, config, market)
    for index, snapshot in enumerate(config.snapshot_dates()):
        ctx = MonthContext(index, snapshot.month, config.shift(market, snapshot))
        features = observe(rng, pop, profile, ctx)
        moves = decide(rng, pop, features, profile, ctx)
        yield snapshot, snapshot_frame(market, snapshot, index, profile, pop, features, moves)
        joiners = joiner_count(rng, pop, profile, ctx)
        pop = advance(rng, pop, moves).extend(new_customers(rng, profile, joiners, next_num, stock=False))
        next_num += joiners


def write_landing(config: DemoConfig, landing_dir: Path) -> list[Path]:
    """Write every market's snapshots; atomic per file (write to a temp name, then rename)."""
    written = []
    for market in config.markets:
        for snapshot, frame in generate_market(config, market):
            path = write_snapshot(frame, snapshot_path(landing_dir, market, snapshot, config.file_format))
            log.info("wrote %s (%d rows)", path, len(frame))
            written.append(path)
    return written
