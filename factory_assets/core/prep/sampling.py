"""The sample plan of a cell: how many rows of each (snapshot, target) stratum go to which split.

Planned on per-snapshot counts only (a few dozen numbers), then applied in SQL by ranking each
stratum's rows on a seeded hash (`prep_samples`). The steps:
1. Test, out of time: the latest `test_snapshots` labelled snapshots (at most all but one), at
   their natural rate: never de-trended or balanced, since champion and challenger are compared
   on it. Train and validation come from the labelled snapshots in the `training_window_months`
   months before the first test snapshot. With a single labelled snapshot (cross-sectional), the
   test is a stratified random share (`validation_share`) of it and the rest trains.
2. De-trend the training pool to its pooled target rate r*: `stratify` samples each snapshot down
   to rate r* (dropping positives where the rate is above r*, negatives where below; a snapshot
   without positives drops out); `weight` keeps the rows and weights them (positives r*/r_s,
   negatives (1-r*)/(1-r_s)) so each snapshot's weighted rate is r*; `none` leaves it. A pool
   within the row budget (`balance_above_rows`) is de-trended by weights even under `stratify`:
   below the budget no row is dropped.
3. Balance, only above the row budget: keep a fraction beta of the negatives, as many as the
   budget holds but never fewer than `negatives_per_positive` per positive; beta (1.0 = none
   dropped) corrects probabilities to rate r* later. Within the budget every row is kept (beta 1).
   A null budget down-samples every pool to `negatives_per_positive`.
4. Cap: when all splits together exceed `max_rows`, every stratum keeps the same fraction.
5. Validation: a stratified share `validation_share` of each kept training stratum.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from factory_assets.core.prep.sql import PrepError, month_index
from factory_assets.core.specs import SamplingSpec


class SamplingError(PrepError):
    """The cell cannot be sampled as its spec asks (no labels, too few positives in a split)."""


@dataclass(frozen=True)
class SnapshotCounts:
    """Labelled rows and positives of one snapshot of the training frame."""

    snapshot_date: dt.date
    rows: int
    positives: int


@dataclass(frozen=True)
class Stratum:
    """Rows of one (snapshot, target) stratum per split, in the stratum's seeded-hash order."""

    snapshot_date: dt.date
    target: int
    available: int
    test: int
    validation: int
    train: int
    weight: float


@dataclass(frozen=True)
class SamplePlan:
    """The strata, the balancing ratio and what the sample covers."""

    strata: list[Stratum]
    beta: float
    target_rate: float
    cross_sectional: bool
    test_snapshots: list[dt.date]
    train_snapshots: list[dt.date]

    def totals(self, split: str) -> tuple[int, int]:
        """(rows, positives) of a split."""
        rows = sum(getattr(s, split) for s in self.strata)
        return rows, sum(getattr(s, split) for s in self.strata if s.target == 1)

    def rates(self) -> list[dict[str, object]]:
        """Per snapshot: rows and (weighted) target rate before and after sampling."""
        out = []
        for day in sorted({s.snapshot_date for s in self.strata}):
            strata = [s for s in self.strata if s.snapshot_date == day]
            before = sum(s.available for s in strata)
            kept = {s.target: (s.train + s.validation, s.test) for s in strata}
            weights = {s.target: s.weight for s in strata}
            mass = {t: kept[t][0] * weights[t] + kept[t][1] for t in kept}
            after = sum(a + b for a, b in kept.values())
            out.append(
                {
                    "snapshot_date": day,
                    "rows_before": before,
                    "rate_before": sum(s.available for s in strata if s.target == 1) / before
                    if before
                    else None,
                    "rows_after": after,
                    "rate_after": mass.get(1, 0.0) / sum(mass.values()) if sum(mass.values()) else None,
                }
            )
        return out


Kept = dict[tuple[dt.date, int], tuple[float, float]]
"""(snapshot, target) -> (rows to keep, weight of each kept train / validation row)."""


def _detrend(pool: dict[dt.date, tuple[int, int]], how: str, rate: float) -> Kept:
    """Rows to keep and weights per stratum after de-trending every snapshot to `rate`."""
    out: Kept = {}
    for day, (pos, neg) in pool.items():
        own = pos / (pos + neg) if pos + neg else 0.0
        keep_pos, keep_neg, w_pos, w_neg = float(pos), float(neg), 1.0, 1.0
        if how == "stratify" and 0 < rate < 1:
            if own > rate:
                keep_pos = rate * neg / (1 - rate)
            elif own < rate:
                keep_neg = pos * (1 - rate) / rate
        elif how == "weight" and 0 < rate < 1:
            w_pos = rate / own if pos else 1.0
            w_neg = (1 - rate) / (1 - own) if neg else 1.0
        out[(day, 1)], out[(day, 0)] = (keep_pos, w_pos), (keep_neg, w_neg)
    return out


def _beta(kept: Kept, ratio: float | None, budget: int | None = None) -> float:
    """The kept fraction of negatives: 1 within the budget, else what fits it, at least `ratio` a positive."""
    positives = sum(n for (_, t), (n, _) in kept.items() if t == 1)
    negatives = sum(n for (_, t), (n, _) in kept.items() if t == 0)
    if positives <= 0 or negatives <= 0:
        return 1.0
    if budget is not None and positives + negatives <= budget:
        return 1.0
    floor = ratio * positives / negatives if ratio is not None else 0.0
    fits = (budget - positives) / negatives if budget is not None else 0.0
    beta = min(1.0, max(floor, fits))
    return beta if beta > 0 else 1.0  # positives alone exceed the budget: `max_rows` caps instead


def _split_snapshots(days: list[dt.date], spec: SamplingSpec) -> tuple[list[dt.date], list[dt.date]]:
    """(training pool snapshots, test snapshots) of a series of labelled snapshots."""
    k = min(spec.test_snapshots, len(days) - 1)
    test = days[-k:]
    first = month_index(test[0])
    pool = [d for d in days[:-k] if first - spec.training_window_months <= month_index(d) < first]
    return pool, test


Counts = dict[dt.date, tuple[int, int]]
"""snapshot -> (positives, negatives)."""


def _cross_sectional(by_day: Counts, spec: SamplingSpec) -> tuple[Counts, dict[tuple[dt.date, int], int]]:
    """(training pool, test rows per stratum) of a single snapshot: a stratified random test share."""
    ((day, (pos, neg)),) = by_day.items()
    test = {(day, 1): round(pos * spec.validation_share), (day, 0): round(neg * spec.validation_share)}
    return {day: (pos - test[(day, 1)], neg - test[(day, 0)])}, test


def _out_of_time(
    by_day: Counts, spec: SamplingSpec, cell: str
) -> tuple[Counts, dict[tuple[dt.date, int], int], list[dt.date]]:
    """(training pool, test rows per stratum, test snapshots) of a series of labelled snapshots."""
    pool_days, test_days = _split_snapshots(list(by_day), spec)
    if not pool_days:
        raise SamplingError(
            f"{cell}: no labelled snapshot in the {spec.training_window_months} months before the "
            f"first test snapshot {test_days[0]} (labelled: {list(by_day)})"
        )
    test = {(d, t): by_day[d][1 - t] for d in test_days for t in (1, 0)}
    return {d: by_day[d] for d in pool_days}, test, test_days


def _strata(
    by_day: Counts, kept: Kept, test: dict[tuple[dt.date, int], int], spec: SamplingSpec
) -> list[Stratum]:
    """Whole rows per stratum and split, after the `max_rows` cap (the same fraction everywhere)."""
    size = sum(n for n, _ in kept.values()) + sum(test.values())
    cap = spec.max_rows / size if spec.max_rows and size > spec.max_rows else 1.0
    strata = []
    for day in sorted({d for d, _ in kept} | {d for d, _ in test}):
        for target in (1, 0):
            available = by_day[day][1 - target]
            n_test = math.floor(test.get((day, target), 0) * cap)
            n_keep, weight = kept.get((day, target), (0.0, 1.0))
            n_keep = min(round(n_keep) if cap == 1.0 else math.floor(n_keep * cap), available - n_test)
            n_val = round(n_keep * spec.validation_share)
            strata.append(Stratum(day, target, available, n_test, n_val, n_keep - n_val, weight))
    return strata


def plan_samples(counts: list[SnapshotCounts], spec: SamplingSpec, cell: str) -> SamplePlan:
    """The sample plan of a cell from its labelled snapshots' counts (see the module docstring)."""
    counts = sorted((c for c in counts if c.rows > 0), key=lambda c: c.snapshot_date)
    if not counts:
        raise SamplingError(f"{cell}: the training frame holds no labelled snapshot")
    by_day = {c.snapshot_date: (c.positives, c.rows - c.positives) for c in counts}
    cross = len(by_day) == 1
    if cross:
        pool, test = _cross_sectional(by_day, spec)
        test_days = list(by_day)
    else:
        pool, test, test_days = _out_of_time(by_day, spec, cell)
    total = sum(p + n for p, n in pool.values())
    rate = sum(p for p, _ in pool.values()) / total if total else 0.0
    budget = spec.balance_above_rows
    how = "weight" if spec.detrend == "stratify" and budget is not None and total <= budget else spec.detrend
    kept = _detrend(pool, how, rate)
    beta = _beta(kept, spec.negatives_per_positive, budget)
    kept = {key: (n * (beta if key[1] == 0 else 1.0), w) for key, (n, w) in kept.items()}
    return SamplePlan(_strata(by_day, kept, test, spec), beta, rate, cross, test_days, sorted(pool))


def check_positives(plan: SamplePlan, minimum: int, cell: str) -> dict[str, int]:
    """Positives per split; raise `SamplingError` naming the cell and the counts if any is short."""
    positives = {split: plan.totals(split)[1] for split in ("train", "validation", "test")}
    short = {k: v for k, v in positives.items() if v < minimum}
    if short:
        raise SamplingError(
            f"{cell}: too few positives per split (minimum {minimum}): "
            + ", ".join(f"{k} {v}" for k, v in positives.items())
            + f"; short: {', '.join(short)}"
        )
    return positives
