"""Per-market profiles of the demo CAR: size-independent base rates and feature levels.

A profile is derived from the market code and the seed (stable across processes and Python
versions: a SHA-256 of the code, never `hash()`), or given explicitly when a test needs a known gap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

REGION_POOL = (
    "north", "south", "east", "west", "central", "capital",
    "coast", "highlands", "islands", "lakes", "metro", "valley",
)  # fmt: skip


def stable_hash(text: str) -> int:
    """A 64-bit integer from `text`, identical in every process (unlike Python's `hash`)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def market_rng(seed: int, market: str, stream: int) -> np.random.Generator:
    """The seeded generator of one market and stream (0: profile, 1: simulation, 2: faults)."""
    return np.random.default_rng([seed, stable_hash(market), stream])


@dataclass(frozen=True)
class MarketProfile:
    """What makes one market differ from another; offsets are on the log-odds scale."""

    regions: tuple[str, ...]
    region_weights: tuple[float, ...]
    region_churn: tuple[float, ...]
    churn_offset: float = 0.0
    upgrade_offset: float = 0.0
    downgrade_offset: float = 0.0
    addon_offset: float = 0.0
    price_level: float = 1.0
    viewing_level: float = 1.0
    tier_mix: tuple[float, float, float] = (0.45, 0.35, 0.20)
    mean_age: float = 42.0
    campaign_rate: float = 0.6
    growth: float = 0.003
    """Net monthly growth: joiners replace leavers plus this share of the base."""

    def __post_init__(self) -> None:
        if not (len(self.regions) == len(self.region_weights) == len(self.region_churn) > 0):
            raise ValueError("a market profile needs as many region weights and offsets as regions")
        if abs(sum(self.tier_mix) - 1.0) > 1e-6:
            raise ValueError(f"tier_mix must sum to 1, got {self.tier_mix}")


def derive_profile(market: str, seed: int) -> MarketProfile:
    """A plausible, reproducible profile for `market` (same code and seed, same profile)."""
    rng = market_rng(seed, market, 0)
    k = int(rng.integers(4, 8))
    regions = tuple(sorted(rng.choice(REGION_POOL, size=k, replace=False).tolist()))
    weights = rng.dirichlet(np.full(k, 4.0))
    premium = float(rng.uniform(0.12, 0.28))
    standard = float(rng.uniform(0.28, 0.42))
    return MarketProfile(
        regions=regions,
        region_weights=tuple(round(float(w), 6) for w in weights),
        region_churn=tuple(round(float(x), 4) for x in rng.normal(0.0, 0.25, k)),
        churn_offset=float(rng.uniform(-0.35, 0.3)),
        upgrade_offset=float(rng.uniform(-0.35, 0.35)),
        downgrade_offset=float(rng.uniform(-0.3, 0.3)),
        addon_offset=float(rng.uniform(-0.35, 0.35)),
        price_level=float(rng.uniform(0.8, 1.3)),
        viewing_level=float(rng.uniform(0.85, 1.2)),
        tier_mix=(1.0 - premium - standard, standard, premium),
        mean_age=float(rng.uniform(36.0, 48.0)),
        campaign_rate=float(rng.uniform(0.35, 0.9)),
        growth=float(rng.uniform(-0.001, 0.006)),
    )


@dataclass(frozen=True)
class DriftShift:
    """What changes in a drift market from `drift_from` on: content loss, price rise, retention push.

    Feature shifts are multipliers, log-rate shifts or shares; movement shifts are on the log-odds
    scale. Viewing enters the movements relative to the market's level, so the content loss moves
    the viewing features without moving the rates: a pre-drift model misreads the new hours.
    """

    viewing: float = 0.55
    """Multiplier on viewing hours of every genre (and so on sessions and log-in gaps)."""
    price: float = 1.25
    """Multiplier on ARPU (a price rise)."""
    late_payments: float = 1.0
    """Log-rate shift of late payments."""
    support_calls: float = 1.0
    """Log-rate shift of support calls (and so of complaints)."""
    campaigns: float = 2.5
    """Multiplier on campaign contacts (a retention campaign)."""
    discount_share: float = 0.25
    """Share of customers given a retention discount each month, on top of running discounts."""
    churn: float = 0.2
    upgrade: float = -0.3
    downgrade: float = 0.3


NO_DRIFT = DriftShift(
    viewing=1.0, price=1.0, late_payments=0.0, support_calls=0.0, campaigns=1.0, discount_share=0.0,
    churn=0.0, upgrade=0.0, downgrade=0.0,
)  # fmt: skip
"""The shift of a month without drift: nothing changes."""
DEFAULT_DRIFT = DriftShift()
