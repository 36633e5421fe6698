"""The demo CAR population: per-customer state arrays (no frames) and how customers are born.

A market is a set of parallel numpy arrays, one entry per live customer. Static attributes are drawn
once at joining; hidden traits (affinities, frailty, upsell appetite) never appear in the CAR but
drive both the observed features and the movements, which is what gives the models real signal.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from factory_assets.demo.profile import MarketProfile

TIERS = ("basic", "standard", "premium")
ADDONS = ("sports", "movies", "kids")
GENDERS = ("female", "male", "unknown")
INCOME_BANDS = ("low", "mid", "high", "very_high")
PAYMENT_METHODS = ("direct_debit", "card", "paypal", "invoice")
CONTRACT_TYPES = ("monthly", "annual")

_GENDER_P = (0.49, 0.48, 0.03)
_INCOME_P = (0.30, 0.40, 0.22, 0.08)
_PAYMENT_P = (0.50, 0.30, 0.12, 0.08)
_INCOME_MISSING = 0.12
_AGE_MISSING = 0.03
_ANNUAL_SHARE = 0.25
_STOCK_MEAN_TENURE = 36.0
_ADDON_BASE = np.array([-1.7, -1.5, -2.0])


@dataclass
class Population:
    """Parallel per-customer arrays of one market; every field has one entry per live customer."""

    num: np.ndarray  # int64, the customer number inside the market (never reused)
    region: np.ndarray  # int8 index into the profile's regions
    gender: np.ndarray  # int8 index into GENDERS
    age: np.ndarray  # float64 years, NaN when unknown
    household: np.ndarray  # int8 persons
    income: np.ndarray  # int8 index into INCOME_BANDS, -1 when unknown
    payment: np.ndarray  # int8 index into PAYMENT_METHODS
    contract: np.ndarray  # int8 index into CONTRACT_TYPES
    email_opt_in: np.ndarray  # int8 0/1
    base_devices: np.ndarray  # int8
    affinity: np.ndarray  # float64 (n, 3): hidden taste for sports, movies, kids content
    frailty: np.ndarray  # float64 hidden churn proneness
    upsell: np.ndarray  # float64 hidden appetite for more
    tenure: np.ndarray  # int64 months
    tier: np.ndarray  # int8 index into TIERS
    addons: np.ndarray  # int8 (n, 3) 0/1 holdings
    engage: np.ndarray  # float64 AR(1) engagement
    pay_risk: np.ndarray  # float64 AR(1) payment trouble
    dissat: np.ndarray  # float64 AR(1) dissatisfaction
    discount: np.ndarray  # int8 0/1
    notice: np.ndarray  # int8 1 = cancelled, leaves after this snapshot

    def __len__(self) -> int:
        return len(self.num)

    def take(self, keep: np.ndarray) -> Population:
        """The customers selected by the boolean mask or index array `keep`."""
        return Population(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def extend(self, other: Population) -> Population:
        """The population with `other` (the newcomers) appended."""
        return Population(
            **{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)}
        )


def _categorical(rng: np.random.Generator, n: int, probs: tuple[float, ...]) -> np.ndarray:
    return rng.choice(len(probs), size=n, p=np.asarray(probs) / sum(probs)).astype(np.int8)


def _with_missing(rng: np.random.Generator, values: np.ndarray, share: float, fill: float) -> np.ndarray:
    out = values.copy()
    out[rng.random(len(values)) < share] = fill
    return out


def _demographics(rng: np.random.Generator, profile: MarketProfile, n: int) -> dict[str, np.ndarray]:
    household = np.clip(rng.poisson(1.6, n) + 1, 1, 7).astype(np.int8)
    age = np.clip(rng.normal(profile.mean_age, 13.0, n), 18, 90)
    income = _categorical(rng, n, _INCOME_P)
    return {
        "region": _categorical(rng, n, profile.region_weights),
        "gender": _categorical(rng, n, _GENDER_P),
        "age": _with_missing(rng, age, _AGE_MISSING, np.nan),
        "household": household,
        "income": _with_missing(rng, income, _INCOME_MISSING, -1).astype(np.int8),
        "payment": _categorical(rng, n, _PAYMENT_P),
        "contract": (rng.random(n) < _ANNUAL_SHARE).astype(np.int8),
        "email_opt_in": (rng.random(n) < 0.62).astype(np.int8),
        "base_devices": np.clip(1 + rng.poisson(0.35 * household), 1, 8).astype(np.int8),
    }


def _traits(rng: np.random.Generator, household: np.ndarray, n: int) -> dict[str, np.ndarray]:
    affinity = rng.normal(0.0, 1.0, (n, 3))
    # Families watch children's content: the kids affinity rises with the household size.
    affinity[:, 2] += 0.45 * (household.astype(np.float64) - 2.6)
    return {
        "affinity": affinity,
        "frailty": rng.normal(0.0, 0.55, n),
        "upsell": rng.normal(0.0, 0.5, n),
        "engage": rng.normal(0.0, 1.0, n),
        "pay_risk": rng.normal(0.0, 1.0, n),
        "dissat": rng.normal(0.0, 1.0, n),
    }


def new_customers(
    rng: np.random.Generator, profile: MarketProfile, n: int, first_num: int, stock: bool
) -> Population:
    """`n` customers numbered from `first_num`: the opening stock (spread tenure) or joiners."""
    demo = _demographics(rng, profile, n)
    traits = _traits(rng, demo["household"], n)
    if stock:
        tenure = rng.geometric(1.0 / _STOCK_MEAN_TENURE, n).astype(np.int64) - 1
    else:
        tenure = np.zeros(n, dtype=np.int64)
    basic, standard, premium = profile.tier_mix
    # Newcomers start lower: a third of them on basic who would otherwise pick premium.
    mix = profile.tier_mix if stock else (basic + premium / 3, standard, premium * 2 / 3)
    tier = _categorical(rng, n, mix)
    tier_boost = 0.5 * tier[:, None] + 1.1 * traits["affinity"]
    addons = (rng.random((n, 3)) < 1.0 / (1.0 + np.exp(-(_ADDON_BASE + tier_boost)))).astype(np.int8)
    discount = (rng.random(n) < (0.08 if stock else 0.35)).astype(np.int8)
    return Population(
        num=np.arange(first_num, first_num + n, dtype=np.int64),
        tenure=tenure,
        tier=tier,
        addons=addons,
        discount=discount,
        notice=np.zeros(n, dtype=np.int8),
        **demo,
        **traits,
    )
