"""Month-to-month dynamics of the demo CAR: observed features, movement decisions, next state.

Each month the observed features are drawn from the hidden state (persistent AR(1) latents,
holdings, tier), then every movement to the next month is a Bernoulli draw from a logistic function
of those observed features plus a hidden trait, with seasonality, a gentle trend, market offsets and
optional drift. A churn decision takes effect after one month of notice: the customer is still in
the next snapshot (flagged and disengaging) and absent from the one after.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from factory_assets.demo.population import Population
from factory_assets.demo.profile import DriftShift, MarketProfile

TIER_PRICE = np.array([9.99, 15.99, 22.99])
ADDON_PRICE = 5.99
GENRE_BASE = np.array([0.6, 0.9, 0.3])
_PAYMENT_RISK = np.array([-0.2, 0.0, 0.1, 0.5])
_SEASON = {  # month of year -> log-odds shift, per movement
    "churn": {12: 0.35, 1: 0.15, 9: 0.1},
    "upgrade": {11: 0.2, 12: 0.35},
    "sports": {8: 0.35, 9: 0.3},
    "movies": {12: 0.3, 1: 0.2},
    "kids": {7: 0.3, 8: 0.2, 12: 0.25},
}
_JOIN_SEASON = {12: 1.3, 1: 1.15}
_ADDON_BASE = np.array([-4.2, -4.0, -4.2])
_ADDON_CENTRE = np.array([1.6, 1.9, 1.5])


@dataclass(frozen=True)
class MonthContext:
    """Where a simulated month sits in time, and the drift shift that applies to it."""

    index: int
    month_of_year: int
    shift: DriftShift


@dataclass
class Features:
    """One month's observed features, one entry per live customer."""

    viewing_true: np.ndarray
    genre: np.ndarray  # (n, 3) sports, movies, kids hours
    viewing_hours: np.ndarray  # NaN where tracking failed
    sessions: np.ndarray
    devices: np.ndarray
    days_since_last_login: np.ndarray
    late_payments: np.ndarray
    support_calls: np.ndarray
    complaints: np.ndarray
    campaign_contacts: np.ndarray
    campaign_responses: np.ndarray
    arpu: np.ndarray
    satisfaction: np.ndarray  # NaN where no survey answer
    discount: np.ndarray  # int8 0/1, running discounts plus any retention offer this month


@dataclass
class Moves:
    """Decisions taken on one month's features, applied to build the next month."""

    churn: np.ndarray  # bool: gives notice now, absent two snapshots on
    tier: np.ndarray  # int8 tier next month
    addons: np.ndarray  # int8 (n, 3) holdings next month
    cancel_flag: np.ndarray  # int8 the leakage column of this snapshot


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _hours(rng: np.random.Generator, pop: Population, level: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(pop)
    mood = pop.engage - 0.6 * pop.notice
    noise = rng.normal(0.0, 1.0, (n, 4))
    general = level * np.exp(2.9 + 0.45 * mood + 0.15 * pop.tier + 0.3 * noise[:, 0])
    genre = level * np.exp(
        GENRE_BASE + 0.8 * pop.affinity + 0.3 * mood[:, None] + 1.1 * pop.addons + 0.35 * noise[:, 1:]
    )
    return general + genre.sum(axis=1), genre


def observe(rng: np.random.Generator, pop: Population, profile: MarketProfile, ctx: MonthContext) -> Features:
    """Draw this month's observed features from the hidden state."""
    n = len(pop)
    level = profile.viewing_level * ctx.shift.viewing
    viewing, genre = _hours(rng, pop, level)
    sessions = rng.poisson(0.7 * viewing + 2.0)
    gap = np.minimum(rng.exponential(30.0 / (0.25 * sessions + 0.5)), 120.0).astype(np.int64)
    device_shift = np.where(rng.random(n) < 0.05, rng.choice([-1, 1], n), 0)
    devices = np.clip(pop.base_devices + (pop.tier == 2) + device_shift, 1, 10)
    late_rate = np.exp(-2.4 + 0.9 * pop.pay_risk + _PAYMENT_RISK[pop.payment] + ctx.shift.late_payments)
    late = rng.poisson(late_rate)
    support = rng.poisson(np.exp(-1.6 + 0.6 * pop.dissat + 0.3 * (late > 0) + ctx.shift.support_calls))
    complaints = rng.binomial(support, _sigmoid(-1.2 + 0.8 * pop.dissat))
    reach = (1 + 0.6 * (pop.tier < 2)) * (1 + 0.5 * pop.email_opt_in)
    contacts = rng.poisson(profile.campaign_rate * ctx.shift.campaigns * reach)
    responses = rng.binomial(contacts, _sigmoid(-1.8 + 0.9 * pop.upsell + 0.4 * pop.engage))
    price = profile.price_level * ctx.shift.price
    list_price = TIER_PRICE[pop.tier] + ADDON_PRICE * pop.addons.sum(axis=1)
    promo = rng.random(n) < ctx.shift.discount_share
    discount = np.maximum(pop.discount, promo).astype(np.int8)
    arpu = price * list_price * (1 - 0.25 * discount) * np.where(pop.contract == 1, 0.9, 1.0)
    arpu = np.round(np.maximum(arpu + rng.normal(0.0, 0.4, n), 0.0), 2)
    score = np.clip(np.round(7 - 1.3 * pop.dissat + 0.4 * pop.engage + rng.normal(0.0, 1.0, n)), 1, 10)
    return Features(
        viewing_true=viewing,
        genre=np.round(genre, 1),
        viewing_hours=np.where(rng.random(n) < 0.01, np.nan, np.round(viewing, 1)),
        sessions=sessions,
        devices=devices.astype(np.int64),
        days_since_last_login=gap,
        late_payments=late,
        support_calls=support,
        complaints=complaints,
        campaign_contacts=contacts,
        campaign_responses=responses,
        arpu=arpu,
        satisfaction=np.where(rng.random(n) < 0.7, np.nan, score),
        discount=discount,
    )


def _time_shift(kind: str, ctx: MonthContext, trend: float) -> float:
    return _SEASON[kind].get(ctx.month_of_year, 0.0) + trend * ctx.index


def _churn_logit(pop: Population, f: Features, profile: MarketProfile, ctx: MonthContext) -> np.ndarray:
    lv = np.log1p(f.viewing_true / ctx.shift.viewing) - 3.6
    return (
        -4.85
        + profile.churn_offset
        + np.asarray(profile.region_churn)[pop.region]
        + _time_shift("churn", ctx, 0.006)
        + ctx.shift.churn
        - 1.4 * lv
        + 0.8 * f.late_payments
        + 0.45 * f.support_calls
        + 0.5 * f.complaints
        - 0.8 * pop.contract
        + 0.9 * (pop.tenure < 6)
        - 0.5 * f.discount
        + 0.03 * (f.arpu - 18.0)
        + 0.8 * pop.frailty
    )


def _upgrade_logit(pop: Population, f: Features, profile: MarketProfile, ctx: MonthContext) -> np.ndarray:
    lv = np.log1p(f.viewing_true / ctx.shift.viewing) - 3.6
    return (
        -5.0
        + profile.upgrade_offset
        + _time_shift("upgrade", ctx, 0.008)
        + ctx.shift.upgrade
        + 1.6 * lv
        + 0.5 * (f.devices - 2)
        + 0.8 * f.campaign_responses
        + 0.15 * f.campaign_contacts
        + 0.6 * (pop.income >= 2)
        + 0.4 * (pop.tier == 1)
        - 0.6 * f.late_payments
        - 1.2 * (pop.tenure < 2)
        + pop.upsell
    )


def _downgrade_logit(pop: Population, f: Features, profile: MarketProfile, ctx: MonthContext) -> np.ndarray:
    lv = np.log1p(f.viewing_true / ctx.shift.viewing) - 3.8
    return (
        -4.2
        + profile.downgrade_offset
        + 0.004 * ctx.index
        + ctx.shift.downgrade
        - 2.2 * lv
        + 1.1 * f.late_payments
        + 0.6 * f.support_calls
        + 0.8 * (pop.income == 0)
        - 0.45 * (f.devices - 2)
        + 0.06 * (f.arpu - 28.0)
        - 0.3 * pop.upsell
    )


def _addon_logits(pop: Population, f: Features, profile: MarketProfile, ctx: MonthContext) -> np.ndarray:
    taste = np.log1p(f.genre / ctx.shift.viewing) - _ADDON_CENTRE
    season = np.array([_time_shift(k, ctx, 0.005) for k in ("sports", "movies", "kids")])
    extra = np.stack([0.4 * (pop.gender == 1), 0.3 * (pop.tier == 2), 0.4 * (pop.household >= 3)], axis=1)
    common = 0.6 * f.campaign_responses + 0.1 * f.campaign_contacts + 0.4 * pop.upsell
    return _ADDON_BASE + profile.addon_offset + season + 1.8 * taste + extra + common[:, None]


def decide(
    rng: np.random.Generator, pop: Population, f: Features, profile: MarketProfile, ctx: MonthContext
) -> Moves:
    """Draw every movement from this month to the next (churn, tiers, add-ons, the leakage flag)."""
    u = rng.random((len(pop), 11))
    staying = pop.notice == 0
    churn = staying & (u[:, 0] < _sigmoid(_churn_logit(pop, f, profile, ctx)))
    active = staying & ~churn
    up = active & (pop.tier < 2) & (u[:, 1] < _sigmoid(_upgrade_logit(pop, f, profile, ctx)))
    down = active & (pop.tier == 2) & (u[:, 2] < _sigmoid(_downgrade_logit(pop, f, profile, ctx)))
    lateral = active & ~up & (pop.tier < 2) & (u[:, 3] < np.where(pop.tier == 0, 0.012, 0.008))
    tier = pop.tier.copy()
    tier[lateral] = 1 - tier[lateral]
    tier[up] = 2
    tier[down] = np.where(u[down, 4] < 0.7, 1, 0)
    take = active[:, None] & (pop.addons == 0) & (u[:, 5:8] < _sigmoid(_addon_logits(pop, f, profile, ctx)))
    taste = np.log1p(f.genre / ctx.shift.viewing) - _ADDON_CENTRE
    drop_p = _sigmoid(-3.3 - 1.0 * taste + 0.4 * f.late_payments[:, None])
    drop = (pop.addons == 1) & (u[:, 8:11] < drop_p)
    addons = np.where(take, 1, np.where(drop, 0, pop.addons)).astype(np.int8)
    leaving = (pop.notice == 1) | churn
    flag_u = rng.random(len(pop))
    cancel_flag = np.where(leaving, flag_u < 0.9, flag_u < 0.003).astype(np.int8)
    return Moves(churn=churn, tier=tier, addons=addons, cancel_flag=cancel_flag)


def advance(rng: np.random.Generator, pop: Population, moves: Moves) -> Population:
    """The survivors one month on: leavers gone, movements applied, latents and tenure evolved."""
    n = len(pop)
    shocks = rng.normal(0.0, 1.0, (n, 3))
    switch = rng.random(n)
    nxt = replace(
        pop,
        tier=moves.tier,
        addons=moves.addons,
        notice=moves.churn.astype(np.int8),
        engage=0.85 * pop.engage + 0.527 * shocks[:, 0],
        pay_risk=0.8 * pop.pay_risk + 0.6 * shocks[:, 1],
        dissat=0.75 * pop.dissat + 0.66 * shocks[:, 2],
        discount=np.where(pop.discount == 1, switch < 0.8, switch < 0.025).astype(np.int8),
        tenure=pop.tenure + 1,
        age=pop.age + 1.0 / 12.0,
    )
    return nxt.take(pop.notice == 0)


def joiner_count(rng: np.random.Generator, pop: Population, profile: MarketProfile, ctx: MonthContext) -> int:
    """How many new customers arrive next month: replacements for leavers plus net growth."""
    leavers = int((pop.notice == 1).sum())
    expected = (leavers + profile.growth * len(pop)) * _JOIN_SEASON.get(ctx.month_of_year, 1.0)
    return int(rng.poisson(max(expected, 0.0)))
