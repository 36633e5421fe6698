"""Data Checker 2 rules: each passes on good scores and fails, with a clear detail, on bad ones."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from factory_assets.core.release.score_checks import (
    MIN_COMMON_CUSTOMERS,
    RULES,
    ScoreCheckInputs,
    check_complete,
    check_distribution_stable,
    check_mean_near_expected,
    check_ranks_stable,
    check_snapshot_current,
    check_unique,
    check_valid_values,
    gate_reason,
    psi,
    run_score_checks,
)
from factory_assets.core.specs import ScoreChecks

LIMITS = ScoreChecks()
N = 400
SNAPSHOT = dt.date(2024, 8, 1)


def make_scores(seed: int = 0, n: int = N, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probability = np.clip(rng.beta(2, 18, n) + shift, 0, 1)
    order = probability.argsort().argsort()
    percentile = 100.0 * (order + 1) / n
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "probability": probability,
            "percentile": percentile,
            "decile": 10 - (order * 10) // n,
        }
    )


def inputs(scores: pd.DataFrame, previous: pd.DataFrame | None = None, **kw) -> ScoreCheckInputs:
    base = {
        "expected_rows": N,
        "expected_rate": 0.1,
        "scored_snapshot": SNAPSHOT,
        "latest_snapshot": SNAPSHOT,
        "snapshots_behind": 0,
    }
    base.update(kw)
    return ScoreCheckInputs(scores=scores, previous=previous, **base)


def test_good_scores_pass_every_rule_first_release_and_against_a_similar_previous_one():
    scores = make_scores(seed=1)
    previous = make_scores(seed=1)
    previous["probability"] = previous["probability"] * 1.02

    first = run_score_checks(inputs(scores), LIMITS)
    later = run_score_checks(inputs(scores, previous), LIMITS)

    assert [r.check for r in first] == list(RULES)
    assert all(r.passed for r in first), gate_reason(first)
    assert all(r.passed for r in later), gate_reason(later)
    assert gate_reason(later) is None
    comparisons = {r.check: r.detail for r in first if r.check in ("distribution_stable", "ranks_stable")}
    assert all("first release" in d for d in comparisons.values())


@pytest.mark.parametrize("rows, expected_text", [(N - 7, "7 customers missing"), (N + 3, "3 rows too many")])
def test_complete_fails_when_rows_differ_from_the_eligible_population(rows, expected_text):
    scores = make_scores(n=rows)
    result = check_complete(inputs(scores), LIMITS)
    assert not result.passed
    assert expected_text in result.detail
    assert (result.value, result.threshold) == (rows, N)


def test_complete_fails_when_the_population_count_is_unknown():
    result = check_complete(inputs(make_scores(), expected_rows=None), LIMITS)
    assert not result.passed
    assert "unknown" in result.detail


def test_unique_fails_on_duplicates_and_missing_ids_naming_them():
    scores = make_scores()
    scores.loc[1, "customer_id"] = "c00000"
    scores.loc[2, "customer_id"] = None
    result = check_unique(inputs(scores), LIMITS)
    assert not result.passed
    assert result.value == 2
    assert "'c00000'" in result.detail
    assert "1 row(s) without customer_id" in result.detail
    assert check_unique(inputs(make_scores()), LIMITS).passed


@pytest.mark.parametrize(
    "column, bad_value",
    [
        ("probability", np.nan),
        ("probability", np.inf),
        ("probability", 1.2),
        ("probability", -0.1),
        ("percentile", 101.0),
        ("decile", 0),
    ],
)
def test_valid_values_fails_on_non_finite_or_out_of_range(column, bad_value):
    scores = make_scores()
    scores[column] = scores[column].astype(float)
    scores.loc[5, column] = bad_value
    result = check_valid_values(inputs(scores), LIMITS)
    assert not result.passed
    assert result.value == 1
    assert column in result.detail


def test_psi_is_zero_for_identical_and_large_for_shifted_distributions():
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 5000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, rng.normal(0, 1, 5000)) < 0.02
    assert psi(reference, rng.normal(1.5, 1, 5000)) > 1.0
    with pytest.raises(ValueError, match="non-empty"):
        psi(reference, np.array([]))


def test_psi_matches_a_hand_computed_value():
    # Reference deciles 0..9 (cuts 1..9); current: 20% in the first bin, 0% in the second, 10% elsewhere.
    reference = np.repeat(np.arange(10.0), 10)
    current = np.concatenate([np.zeros(20), np.repeat(np.arange(2.0, 10.0), 10)])
    expected = (0.2 - 0.1) * np.log(0.2 / 0.1) + (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert psi(reference, current) == pytest.approx(expected, rel=1e-9)


def test_distribution_stable_fails_on_a_shifted_release():
    previous = make_scores(seed=1)
    shifted = make_scores(seed=1, shift=0.2)
    result = check_distribution_stable(inputs(shifted, previous), LIMITS)
    assert not result.passed
    assert result.value > LIMITS.max_psi
    assert "PSI" in result.detail


@pytest.mark.parametrize("factor, passes", [(1.0, True), (1.9, True), (2.1, False), (0.45, False)])
def test_mean_near_expected_within_the_ratio_either_way(factor, passes):
    scores = make_scores()
    rate = float(scores["probability"].mean()) / factor
    result = check_mean_near_expected(inputs(scores, expected_rate=rate), LIMITS)
    assert result.passed is passes
    assert result.value == pytest.approx(factor)


def test_mean_near_expected_fails_without_an_expected_rate():
    result = check_mean_near_expected(
        inputs(make_scores(), expected_rate=None, expected_rate_source="no row"), LIMITS
    )
    assert not result.passed
    assert "no row" in result.detail


def test_ranks_stable_fails_when_the_order_of_customers_is_scrambled():
    previous = make_scores(seed=1)
    scrambled = previous.copy()
    scrambled["probability"] = np.random.default_rng(9).permutation(scrambled["probability"].to_numpy())
    result = check_ranks_stable(inputs(scrambled, previous), LIMITS)
    assert not result.passed
    assert result.value < LIMITS.min_rank_spearman
    assert check_ranks_stable(inputs(previous, previous), LIMITS).value == pytest.approx(1.0)


def test_ranks_stable_skips_too_small_an_overlap_and_fails_constant_scores():
    previous = make_scores(seed=1)
    new_customers = make_scores(seed=2)
    new_customers["customer_id"] = "n" + new_customers["customer_id"]
    few = pd.concat([new_customers, previous.head(MIN_COMMON_CUSTOMERS - 1)], ignore_index=True)
    assert check_ranks_stable(inputs(few, previous), LIMITS).passed

    constant = previous.assign(probability=0.1)
    result = check_ranks_stable(inputs(constant, previous), LIMITS)
    assert not result.passed
    assert "constant" in result.detail


def test_gate_reason_names_every_failed_rule():
    scores = make_scores()
    scores.loc[0, "probability"] = np.nan
    scores = scores.iloc[:-5]
    reason = gate_reason(run_score_checks(inputs(scores), LIMITS))
    assert reason is not None
    assert reason.startswith("complete:")
    assert "valid_values:" in reason


CHANGE = "champion changed since the last release r1 (old -> new)"


def test_a_changed_champion_is_compared_with_its_own_reference_and_its_ranks_are_not_compared():
    scores = make_scores(seed=1)
    old_model = make_scores(seed=1, shift=0.2)  # the previous champion's release: far away
    own = make_scores(seed=2)  # the new champion's own scores on the previous snapshot

    versus_old = check_distribution_stable(inputs(scores, old_model), LIMITS)
    versus_own = check_distribution_stable(
        inputs(scores, own, champion_change=CHANGE, previous_source="new champion's own scores"), LIMITS
    )
    ranks = check_ranks_stable(
        inputs(scores, own.sample(frac=1, random_state=0), champion_change=CHANGE), LIMITS
    )

    assert not versus_old.passed, "the same comparison against the old model's release fails"
    assert versus_own.passed
    assert "new champion's own scores" in versus_own.detail
    assert versus_own.reference == "new champion's own scores"
    assert ranks.passed
    assert ranks.value is None
    assert "champion changed" in ranks.detail
    assert ranks.reference.startswith("none")


def test_a_changed_champion_without_a_recorded_reference_is_held_not_waved_through():
    result = check_distribution_stable(inputs(make_scores(), None, champion_change=CHANGE), LIMITS)
    assert not result.passed
    assert "no score reference" in result.detail
    assert CHANGE in result.detail


def test_a_shifted_feed_fails_against_the_new_champions_own_reference_too():
    own = make_scores(seed=2)
    result = check_distribution_stable(
        inputs(make_scores(seed=1, shift=0.2), own, champion_change=CHANGE), LIMITS
    )
    assert not result.passed
    assert result.value > LIMITS.max_psi


@pytest.mark.parametrize(
    "behind, allowed, passes", [(0, 0, True), (1, 0, False), (1, 1, True), (2, 1, False)]
)
def test_snapshot_current_blocks_a_snapshot_older_than_the_markets_latest(behind, allowed, passes):
    limits = ScoreChecks(max_snapshots_behind=allowed)
    latest = dt.date(2024, 8 + behind, 1)
    result = check_snapshot_current(
        inputs(make_scores(), latest_snapshot=latest, snapshots_behind=behind), limits
    )
    assert result.passed is passes
    assert (result.value, result.threshold) == (behind, allowed)
    assert f"latest ingested {latest}" in result.detail


def test_snapshot_current_fails_when_the_latest_snapshot_is_unknown():
    result = check_snapshot_current(
        inputs(
            make_scores(),
            latest_snapshot=None,
            snapshots_behind=None,
            latest_snapshot_source="car.uk does not exist",
        ),
        LIMITS,
    )
    assert not result.passed
    assert "cannot verify" in result.detail
    assert "car.uk" in result.detail


def test_the_expected_rate_rule_names_its_reference():
    result = check_mean_near_expected(
        inputs(make_scores(), expected_rate=0.1, expected_rate_source="realised rate at 2024-06-01"), LIMITS
    )
    assert result.reference == "realised rate at 2024-06-01"
    assert "realised rate" in result.detail


def carried(scores: pd.DataFrame, reference: pd.DataFrame, rate: float, seen: float) -> ScoreCheckInputs:
    """Inputs whose rate `rate` was observed where the champion's mean was `seen`, with a reference."""
    return inputs(
        scores,
        reference,
        expected_rate=rate,
        expected_rate_mean=seen,
        expected_rate_source="realised rate at 2024-06-01",
        previous_source="last release r1",
    )


def test_a_population_that_moved_since_its_labels_is_expected_at_the_carried_rate():
    reference = make_scores(seed=1, shift=0.1)  # the champion's mean doubled since the labelled month
    scores = make_scores(seed=2, shift=0.1)
    seen = float(make_scores(seed=3)["probability"].mean())

    result = check_mean_near_expected(carried(scores, reference, rate=seen, seen=seen), LIMITS)

    assert result.passed, result.detail
    assert result.value == pytest.approx(1.0, abs=0.05)
    assert result.reference.startswith("realised rate at 2024-06-01; carried forward x")
    assert "on last release r1" in result.reference


def test_a_miscalibrated_champion_is_still_caught_after_carrying_forward():
    reference, scores = make_scores(seed=1), make_scores(seed=2)
    seen = float(reference["probability"].mean())

    result = check_mean_near_expected(carried(scores, reference, rate=seen / 3, seen=seen), LIMITS)

    assert not result.passed, "the champion predicted 3x the rate observed where its labels arrived"
    assert result.value == pytest.approx(3.0, rel=0.05)


def test_a_broken_feed_against_the_reference_is_still_caught_after_carrying_forward():
    reference = make_scores(seed=1)
    seen = float(reference["probability"].mean())
    broken = make_scores(seed=2, shift=0.25)  # every score lifted since the reference

    result = check_mean_near_expected(carried(broken, reference, rate=seen, seen=seen), LIMITS)

    assert not result.passed
    assert result.value > LIMITS.max_mean_ratio


def test_without_reference_scores_the_rate_is_not_carried_and_says_so():
    result = check_mean_near_expected(
        inputs(make_scores(), expected_rate=0.1, expected_rate_mean=0.2, expected_rate_source="test rate"),
        LIMITS,
    )

    assert result.reference == "test rate; not carried forward: no reference scores"
    assert result.value == pytest.approx(float(make_scores()["probability"].mean()) / 0.1)
