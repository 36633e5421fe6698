"""Data Checker 2: the gate a cell's scores must pass before they are released.

Eight rules, each a plain function of `ScoreCheckInputs` and the spec's `score_checks` thresholds:
the scores cover the eligible population exactly (`complete`), one row per customer (`unique`),
finite values in range (`valid_values`), a probability distribution close to the reference's
(`distribution_stable`, PSI), a mean probability close to the expected rate (`mean_near_expected`,
ratio either way), customer ranks close to the last release's (`ranks_stable`, Spearman on the
customers in both), the market's latest snapshot scored (`snapshot_current`) and no CAR column the
champion reads shifted extremely in the scored snapshot (`features_sound`, from Data Checker 1's
`extreme_psi` record of that snapshot).

The comparison rules know what changed. While the champion is the model of the last release, the
reference is that release. When the champion changed since, the reference for the distribution is
the new champion's own scores recorded at its decision (`core.model.score_reference`), and ranks
are not compared (a different model ranks differently by design). The expected rate is the recent
realised rate where labels have arrived, else the champion's test rate (`core.release.expected_rate`);
labels lag the scored snapshot by the target's horizon, so when the champion's own mean on that
labelled population is known, the rate is carried forward to the reference by how that mean moved
(`carried_rate`). Every result names its reference. The first release of a cell has nothing to
compare with, so the comparison rules pass and say so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

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
class SnapshotShift:
    """Data Checker 1's record of the scored snapshot, and the features of the champion that scored it."""

    snapshot: dt.date | None
    verdict: str
    """`pass` or `warn` (a blocked snapshot is never scored), or `unrecorded` before verdicts were kept."""
    extreme: dict[str, float] = field(default_factory=dict)
    """CAR columns whose PSI vs the previous snapshot reached `block_psi`, with their PSI."""
    block_psi: float | None = None
    previous: str | None = None
    model_version: str | None = None
    features: tuple[str, ...] | None = None
    """The champion's features (None: unknown, so every extreme column counts as read)."""


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
    expected_rate_mean: float | None = None
    """The champion's mean probability on the labelled population of `expected_rate` (None: unknown)."""
    previous_source: str = "last release"
    """What `previous` is and why it is the reference (the same model's last release, or the new
    champion's own recorded scores)."""
    champion_change: str | None = None
    """Set when the scores come from another model than the last release's: says which and since when."""
    scored_snapshot: dt.date | None = None
    latest_snapshot: dt.date | None = None
    """The market's latest ingested snapshot (None when unknown)."""
    snapshots_behind: int | None = None
    """Ingested snapshots of the market newer than the scored one."""
    latest_snapshot_source: str = "the market's CAR"
    snapshot_shift: SnapshotShift | None = None
    """Data Checker 1's record of the scored snapshot (None: not read)."""


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule for one cell."""

    check: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str
    reference: str = ""
    """What the rule compared with and why that reference (empty for rules that compare nothing)."""


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


def _no_reference(inputs: ScoreCheckInputs) -> str | None:
    """Why there is nothing to compare with (a first release), or None when there is a reference."""
    if inputs.previous is None and inputs.champion_change is None:
        return "first release: nothing to compare"
    return None


def check_distribution_stable(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """PSI vs the reference (the same model's last release, or a new champion's own scores) <= `max_psi`."""
    name, limit, source = "distribution_stable", limits.max_psi, inputs.previous_source
    first = _no_reference(inputs)
    if first is not None:
        return RuleResult(name, True, None, limit, first, "none")
    if inputs.previous is None:
        detail = f"{inputs.champion_change}, and no score reference of the new champion was recorded"
        return RuleResult(name, False, None, limit, detail + ": cannot compare", source)
    current, previous = _finite_probabilities(inputs.scores), _finite_probabilities(inputs.previous)
    if current.size == 0 or previous.size == 0:
        return RuleResult(name, False, None, limit, "no finite probabilities to compare", source)
    value = psi(previous, current)
    detail = f"PSI {value:.4f} vs {source} ({previous.size} -> {current.size} customers)"
    return RuleResult(name, value <= limit, value, limit, detail, source)


def carried_rate(inputs: ScoreCheckInputs) -> tuple[float | None, str]:
    """The expected rate of the scored population, and where it came from.

    The observed rate belongs to a labelled population `horizon` months older than the scores; a
    population that moved since (a drift month) has another rate. The champion saw the move: the rate
    is scaled by the champion's mean on the reference scores (its last release, or a new champion's
    own scores) over its mean on the labelled population. What is left for the rule is the
    champion's calibration there times the move from the reference to the scores: a miscalibrated
    model or a broken feed still fails, a population that moved before the reference does not.
    """
    rate, source, seen = inputs.expected_rate, inputs.expected_rate_source, inputs.expected_rate_mean
    if rate is None or seen is None or not np.isfinite(seen) or seen <= 0:
        return rate, source
    if inputs.previous is None:
        return rate, f"{source}; not carried forward: no reference scores"
    reference = _finite_probabilities(inputs.previous)
    if reference.size == 0 or reference.mean() <= 0:
        return rate, f"{source}; not carried forward: the reference holds no positive probability"
    moved = float(reference.mean()) / seen
    carried = (
        f"{source}; carried forward x{moved:.3f} by the champion's mean {seen:.4f} there -> "
        f"{reference.mean():.4f} on {inputs.previous_source}"
    )
    return rate * moved, carried


def check_mean_near_expected(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """Mean probability within a factor `max_mean_ratio` of the expected rate (`carried_rate`), either way."""
    name, limit = "mean_near_expected", limits.max_mean_ratio
    rate, source = carried_rate(inputs)
    if rate is None or not np.isfinite(rate) or rate <= 0:
        return RuleResult(name, False, None, limit, f"expected rate unknown ({source})", source)
    current = _finite_probabilities(inputs.scores)
    if current.size == 0:
        return RuleResult(name, False, None, limit, "no finite probabilities", source)
    mean = float(current.mean())
    ratio = mean / rate
    detail = f"mean probability {mean:.4f} vs expected {rate:.4f} ({source}): ratio {ratio:.3f}"
    return RuleResult(name, 1 / limit <= ratio <= limit, ratio, limit, detail, source)


def _common_customers(inputs: ScoreCheckInputs) -> pd.DataFrame:
    current = inputs.scores[["customer_id", "probability"]].drop_duplicates("customer_id")
    previous = inputs.previous[["customer_id", "probability"]].rename(columns={"probability": "previous"})
    both = current.merge(previous, on="customer_id").astype({"probability": float, "previous": float})
    return both[np.isfinite(both["probability"]) & np.isfinite(both["previous"])]


def check_ranks_stable(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """Spearman with the same model's last release, customers in both, >= `min_rank_spearman`."""
    name, limit, source = "ranks_stable", limits.min_rank_spearman, inputs.previous_source
    first = _no_reference(inputs)
    if first is not None:
        return RuleResult(name, True, None, limit, first, "none")
    if inputs.champion_change is not None:
        detail = (
            f"not compared: {inputs.champion_change}; a different model ranks customers differently by "
            "design (its score distribution is checked against its own reference)"
        )
        return RuleResult(name, True, None, limit, detail, "none: the champion changed")
    both = _common_customers(inputs)
    if len(both) < MIN_COMMON_CUSTOMERS:
        detail = f"only {len(both)} customers in both releases (< {MIN_COMMON_CUSTOMERS}): not compared"
        return RuleResult(name, True, None, limit, detail, source)
    if both["probability"].nunique() < 2 or both["previous"].nunique() < 2:
        return RuleResult(name, False, None, limit, "rank correlation undefined (constant scores)", source)
    rho = both["probability"].corr(both["previous"], method="spearman")
    detail = f"Spearman {rho:.4f} on {len(both)} customers in both releases"
    return RuleResult(name, bool(rho >= limit), float(rho), limit, detail, source)


def check_snapshot_current(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """The scored snapshot trails the market's latest ingested one by <= `max_snapshots_behind`."""
    name, limit, source = "snapshot_current", limits.max_snapshots_behind, inputs.latest_snapshot_source
    if inputs.scored_snapshot is None:
        return RuleResult(name, False, None, limit, "the scores carry no snapshot date", source)
    if inputs.latest_snapshot is None or inputs.snapshots_behind is None:
        detail = f"latest ingested snapshot unknown ({source}): cannot verify"
        return RuleResult(name, False, None, limit, detail, source)
    behind = inputs.snapshots_behind
    detail = (
        f"scored {inputs.scored_snapshot}, latest ingested {inputs.latest_snapshot} ({source}): "
        f"{behind} newer snapshot(s), at most {limit} allowed"
    )
    return RuleResult(name, behind <= limit, behind, limit, detail, source)


def reads_column(features: tuple[str, ...], column: str) -> bool:
    """True if a feature is the CAR column itself or a history feature of it (`<column>__<kind><n>`)."""
    return any(f == column or f.startswith(f"{column}__") for f in features)


def _listed(columns: dict[str, float]) -> str:
    return ", ".join(f"{c} (PSI {v:.2f})" for c, v in sorted(columns.items(), key=lambda kv: -kv[1]))


def check_features_sound(inputs: ScoreCheckInputs, limits: ScoreChecks) -> RuleResult:
    """No CAR column the champion reads shifted extremely in the scored snapshot (DC1 `extreme_psi`).

    Extreme: a PSI vs the previous snapshot of at least Data Checker 1's `block_psi`. A column the
    champion does not read is a warning only (the rule passes and names it).
    """
    name, shift = "features_sound", inputs.snapshot_shift
    if shift is None:
        return RuleResult(name, True, None, None, "Data Checker 1's record was not read", "none")
    reference = f"Data Checker 1 verdict of snapshot {shift.snapshot} ({shift.verdict})"
    if not shift.extreme:
        detail = f"no CAR column shifted extremely in snapshot {shift.snapshot}"
        return RuleResult(name, True, 0.0, shift.block_psi, detail, reference)
    champion = f"champion {(shift.model_version or 'unknown')[:12]}"
    features = shift.features
    read = {c: v for c, v in shift.extreme.items() if features is None or reads_column(features, c)}
    how = f"shifted extremely in snapshot {shift.snapshot} (PSI vs {shift.previous} >= {shift.block_psi})"
    if not read:
        detail = f"{_listed(shift.extreme)} {how}, but {champion} reads none of them: a warning only"
        return RuleResult(name, True, 0.0, shift.block_psi, detail, reference)
    reads = "may read them (its features are unknown)" if shift.features is None else "reads them"
    detail = f"{_listed(read)} {how}, and {champion} {reads}: its scores of this snapshot are not sound"
    return RuleResult(name, False, max(read.values()), shift.block_psi, detail, reference)


RULES: dict[str, Rule] = {
    "complete": check_complete,
    "unique": check_unique,
    "valid_values": check_valid_values,
    "distribution_stable": check_distribution_stable,
    "mean_near_expected": check_mean_near_expected,
    "ranks_stable": check_ranks_stable,
    "snapshot_current": check_snapshot_current,
    "features_sound": check_features_sound,
}
"""Every Data Checker 2 rule by name, in the order they are reported."""


def run_score_checks(inputs: ScoreCheckInputs, limits: ScoreChecks) -> list[RuleResult]:
    """Evaluate every rule on one cell's scores."""
    return [rule(inputs, limits) for rule in RULES.values()]


def gate_reason(results: list[RuleResult]) -> str | None:
    """Why the scores may not be released (every failed rule with its detail), or None if they may."""
    failed = [f"{r.check}: {r.detail}" for r in results if not r.passed]
    return "; ".join(failed) if failed else None
