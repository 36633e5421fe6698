"""Data Checker 2: the gate a cell's scores must pass before they are released.

Six rules, each a plain function of `ScoreCheckInputs` and the spec's `score_checks` thresholds:
the scores cover the eligible population exactly (`complete`), one row per customer (`unique`),
finite values in range (`valid_values`), a probability distribution close to the last release's
(`distribution_stable`, PSI), a mean probability close to the rate the champion saw on its test
(`mean_near_expected`, ratio either way) and customer ranks close to the last release's
(`ranks_stable`, Spearman on the customers in both). The first release of a cell has nothing to
compare with, so the two comparison rules pass and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from factory_assets.core.specs import ScoreChecks

PSI_BINS = 10
"""Quantile bins of the previous release's probabilities used for the PSI."""
PSI_FLOOR = 1e-4
"""Share given to an empty bin so that the PSI stays finite."""
MIN_COMMON_CUSTOMERS = 30
"""Below this many customers in both releases a rank correlation says nothing: the rule passes."""


@dataclass(frozen=True)
class ScoreCheckInputs:
    """What the gate looks at for one cell.

    `scores` holds customer_id and probability (percentile and decile when present); `previous`
    holds customer_id and probability of the last good release, or None for a first release.
    """

    scores: pd.DataFrame
    expected_rows: int | None
    expected_rate: float | None
    previous: pd.DataFrame | None = None
    expected_rows_source: str = "eligible population"
    expected_rate_source: str = "champion test base rate"


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule for one cell."""

    check: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str


Rule = Callable[[ScoreCheckInputs, ScoreChecks], RuleResult]


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of `current` against `reference`, quantile bins of the reference."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if reference.size == 0 or current.size == 0:
        raise ValueError("psi needs non-empty reference and current samples")
    cuts = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(cuts, reference, side="right"), minlength=cuts.size + 1)
    cur_share = np.bincount(np.searchsorted(cuts, current, side="right"), minlength=cuts.size + 1)
    ref_share = np.maximum(ref_share / reference.size, PSI_FLOOR)
    cur_share = np.maximum(cur_share / current.size, PSI_FLOOR)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _finite_probabilities(frame: pd.DataFrame) -> np.ndarray:
    values = pd.to_numeric(frame["probability"], errors="coerce").to_numpy(dtype=float)
    return values[np.isfinite(values)]


def check_complete(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """The scores hold exactly as many rows as the eligible population has customers."""
    rows = len(inputs.scores)
    if inputs.expected_rows is None:
        return RuleResult("complete", False, rows, None, "eligible population count unknown: cannot verify")
    passed = rows == inputs.expected_rows
    detail = f"{rows} score rows for {inputs.expected_rows} customers ({inputs.expected_rows_source})"
    if rows < inputs.expected_rows:
        detail += f": {inputs.expected_rows - rows} customers missing"
    elif rows > inputs.expected_rows:
        detail += f": {rows - inputs.expected_rows} rows too many"
    return RuleResult("complete", passed, rows, inputs.expected_rows, detail)


def check_unique(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """One row per customer, and every row names a customer."""
    ids = inputs.scores["customer_id"]
    missing = int(ids.isna().sum())
    named = ids.dropna()
    extra_rows = int(named.duplicated().sum())
    repeated = named[named.duplicated()].drop_duplicates()
    detail = f"{len(repeated)} customer(s) scored more than once ({extra_rows} extra rows)"
    if len(repeated):
        detail += " e.g. " + ", ".join(repr(v) for v in repeated.head(3))
    if missing:
        detail += f"; {missing} row(s) without customer_id"
    bad = extra_rows + missing
    return RuleResult("unique", bad == 0, bad, 0, detail)


def _out_of_range(frame: pd.DataFrame, column: str, low: float, high: float) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return ~(np.isfinite(values) & (values >= low) & (values <= high))


def check_valid_values(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """Probabilities finite in [0, 1]; percentiles in [0, 100] and deciles in 1..10 when present."""
    ranges = {"probability": (0.0, 1.0), "percentile": (0.0, 100.0), "decile": (1.0, 10.0)}
    problems, bad_rows = [], pd.Series(False, index=inputs.scores.index)
    for column, (low, high) in ranges.items():
        if column not in inputs.scores.columns:
            continue
        bad = _out_of_range(inputs.scores, column, low, high)
        if bad.any():
            examples = ", ".join(repr(v) for v in inputs.scores.loc[bad, column].head(3).tolist())
            problems.append(
                f"{int(bad.sum())} {column} value(s) not finite in [{low:g}, {high:g}] (e.g. {examples})"
            )
        bad_rows |= bad
    detail = "; ".join(problems) or "all values finite and in range"
    return RuleResult("valid_values", not problems, int(bad_rows.sum()), 0, detail)


def check_distribution_stable(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """PSI of the probabilities against the last release's stays at or below `max_psi`."""
    name, limit = "distribution_stable", limits.max_psi
    if inputs.previous is None:
        return RuleResult(name, True, None, limit, "first release: nothing to compare")
    current, previous = _finite_probabilities(inputs.scores), _finite_probabilities(inputs.previous)
    if current.size == 0 or previous.size == 0:
        return RuleResult(name, False, None, limit, "no finite probabilities to compare")
    value = psi(previous, current)
    detail = f"PSI {value:.4f} vs last release ({previous.size} -> {current.size} customers)"
    return RuleResult(name, value <= limit, value, limit, detail)


def check_mean_near_expected(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """Mean probability within a factor `max_mean_ratio` of the expected rate, either way."""
    name, limit, rate = "mean_near_expected", limits.max_mean_ratio, inputs.expected_rate
    if rate is None or not np.isfinite(rate) or rate <= 0:
        return RuleResult(name, False, None, limit, f"expected rate unknown ({inputs.expected_rate_source})")
    current = _finite_probabilities(inputs.scores)
    if current.size == 0:
        return RuleResult(name, False, None, limit, "no finite probabilities")
    mean = float(current.mean())
    ratio = mean / rate
    detail = (
        f"mean probability {mean:.4f} vs expected {rate:.4f} ({inputs.expected_rate_source}): "
        f"ratio {ratio:.3f}"
    )
    return RuleResult(name, 1 / limit <= ratio <= limit, ratio, limit, detail)


def _common_customers(inputs: ScoreCheckInputs) -> pd.DataFrame:
    current = inputs.scores[["customer_id", "probability"]].drop_duplicates("customer_id")
    previous = inputs.previous[["customer_id", "probability"]].rename(columns={"probability": "previous"})
    both = current.merge(previous, on="customer_id").astype({"probability": float, "previous": float})
    return both[np.isfinite(both["probability"]) & np.isfinite(both["previous"])]


def check_ranks_stable(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """Spearman correlation with the last release, on the customers in both, >= `min_rank_spearman`."""
    name, limit = "ranks_stable", limits.min_rank_spearman
    if inputs.previous is None:
        return RuleResult(name, True, None, limit, "first release: nothing to compare")
    both = _common_customers(inputs)
    if len(both) < MIN_COMMON_CUSTOMERS:
        detail = f"only {len(both)} customers in both releases (< {MIN_COMMON_CUSTOMERS}): not compared"
        return RuleResult(name, True, None, limit, detail)
    if both["probability"].nunique() < 2 or both["previous"].nunique() < 2:
        return RuleResult(name, False, None, limit, "rank correlation undefined (constant scores)")
    rho = both["probability"].corr(both["previous"], method="spearman")
    detail = f"Spearman {rho:.4f} on {len(both)} customers in both releases"
    return RuleResult(name, bool(rho >= limit), float(rho), limit, detail)


RULES: dict[str, Rule] = {
    "complete": check_complete,
    "unique": check_unique,
    "valid_values": check_valid_values,
    "distribution_stable": check_distribution_stable,
    "mean_near_expected": check_mean_near_expected,
    "ranks_stable": check_ranks_stable,
}
"""Every Data Checker 2 rule by name, in the order they are reported."""


def run_score_checks(inputs: ScoreCheckInputs, limits: ScoreChecks) -> list[RuleResult]:
    """Evaluate every rule on one cell's scores."""
    return [rule(inputs, limits) for rule in RULES.values()]


def gate_reason(results: list[RuleResult]) -> str | None:
    """Why the scores may not be released (every failed rule with its detail), or None if they may."""
    failed = [f"{r.check}: {r.detail}" for r in results if not r.passed]
    return "; ".join(failed) if failed else None
