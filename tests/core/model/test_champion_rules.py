"""Every branch of the retrain triggers and the replacement rules, plus champion history from decisions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from factory_assets.core.model import registry
from factory_assets.core.model.champion import SameTestComparison, compare_on_test, decide
from factory_assets.core.model.triggers import ChampionFacts, evaluate_triggers, explain, fired
from factory_assets.core.names import Table
from factory_assets.core.specs import ReplacementRules, RetrainRules

NOW = dt.datetime(2026, 6, 30, 12, 0)
RULES = ReplacementRules(
    min_auc_uplift=0.005,
    delong_alpha=0.05,
    min_auc=0.6,
    min_test_positives=20,
    max_lift_drop=0.1,
    rule_version="test-1",
)
RETRAIN = RetrainRules(
    drift_share=0.3,
    feature_psi=0.2,
    max_champion_age_days=90,
    performance_decay=0.05,
    min_new_label_snapshots=3,
)
CHAMPION = ChampionFacts("c" * 64, NOW - dt.timedelta(days=10), 0.80, dt.date(2026, 4, 30))


def metrics(auc: float, lift: float, positives: int = 100) -> dict[str, object]:
    return {"auc": auc, "lift_top_decile": lift, "positives": positives}


def comparison(ch_auc, ch_lift, champ_auc, champ_lift, p, positives=100) -> SameTestComparison:
    return SameTestComparison(metrics(ch_auc, ch_lift, positives), metrics(champ_auc, champ_lift), p)


# --- retrain triggers ------------------------------------------------------------------------------


def triggers(champion=CHAMPION, drift=0.1, realised=0.79, labelled=(dt.date(2026, 5, 31),), now=NOW):
    return evaluate_triggers(champion, drift, realised, list(labelled), now, RETRAIN)


def test_no_champion_trigger_fires_alone():
    results = triggers(champion=None)
    assert fired(results) == ["no_champion"]


def test_drift_trigger():
    assert fired(triggers(drift=0.3)) == ["drift"]
    assert "drift share 0.300 >= 0.3" in explain(triggers(drift=0.3))


def test_age_trigger():
    assert fired(triggers(now=NOW + dt.timedelta(days=85))) == ["age"]


def test_decay_trigger():
    assert fired(triggers(realised=0.74)) == ["decay"]  # drop 0.06 > 0.05
    assert fired(triggers(realised=0.76)) == []  # drop 0.04


def test_new_labels_trigger():
    labelled = [dt.date(2026, m, 28) for m in (3, 4, 5, 6, 7)]  # three after 2026-04-30
    assert fired(triggers(labelled=labelled)) == ["new_labels"]


def test_no_trigger_records_every_value_and_why():
    results = triggers()
    assert fired(results) == []
    by_name = {r.name: r for r in results}
    assert set(by_name) == {"no_champion", "drift", "age", "decay", "new_labels"}
    assert by_name["drift"].value == pytest.approx(0.1) and by_name["drift"].threshold == 0.3
    assert by_name["age"].value == pytest.approx(10.0)
    assert by_name["decay"].value == pytest.approx(0.01)
    assert by_name["new_labels"].value == 1.0
    reason = explain(results)
    assert reason.startswith("no trigger fired") and "drift share 0.100 < 0.3" in reason


def test_missing_drift_or_realised_performance_do_not_fire():
    results = triggers(drift=None, realised=None)
    assert fired(results) == []
    assert "no drift report" in explain(results) and "no realised performance" in explain(results)


# --- replacement rules -----------------------------------------------------------------------------


def test_no_champion_promotes():
    verdict = decide("new", None, SameTestComparison(metrics(0.7, 2.0), None, None), RULES)
    assert (verdict.outcome, verdict.live_version, verdict.rule_version) == ("promote", "new", "test-1")


def test_better_and_significant_replaces():
    verdict = decide("new", "old", comparison(0.75, 3.0, 0.72, 3.0, p=0.01), RULES)
    assert verdict.outcome == "replace" and verdict.live_version == "new"


def test_better_but_not_significant_keeps():
    verdict = decide("new", "old", comparison(0.75, 3.0, 0.72, 3.0, p=0.2), RULES)
    assert verdict.outcome == "keep" and verdict.live_version == "old" and "not significant" in verdict.reason


def test_uplift_below_margin_keeps():
    verdict = decide("new", "old", comparison(0.723, 3.0, 0.72, 3.0, p=0.001), RULES)
    assert verdict.outcome == "keep" and "uplift" in verdict.reason


def test_below_minimum_quality_keeps():
    low_auc = decide("new", "old", comparison(0.59, 3.0, 0.50, 3.0, p=0.001), RULES)
    few_positives = decide("new", "old", comparison(0.80, 3.0, 0.70, 3.0, p=0.001, positives=5), RULES)
    assert low_auc.outcome == "keep" and "minimum quality" in low_auc.reason
    assert few_positives.outcome == "keep" and "positives" in few_positives.reason


def test_lift_drop_vetoes():
    verdict = decide("new", "old", comparison(0.78, 2.5, 0.72, 2.7, p=0.001), RULES)
    assert verdict.outcome == "veto" and verdict.live_version == "old" and "lift" in verdict.reason


def test_identical_challenger_keeps():
    verdict = decide("same", "same", comparison(0.75, 3.0, 0.75, 3.0, p=1.0), RULES)
    assert verdict.outcome == "keep" and "identical" in verdict.reason


def test_compare_on_test_scores_both_models_on_the_same_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    strong = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=3000))))
    weak = 1 / (1 + np.exp(-(0.3 * (2 * y - 1) + rng.normal(size=3000))))
    result = compare_on_test(y, strong, 0.5, weak, 1.0)
    assert result.challenger["rows"] == result.champion["rows"] == 3000
    assert result.auc_uplift > 0.1 and result.delong_p < 1e-6
    assert decide("strong", "weak", result, RULES).outcome == "replace"


# --- champion history ------------------------------------------------------------------------------


def store_decision(warehouse, decision_id, when, outcome, live):
    row = {
        "decision_id": decision_id,
        "market": "m1",
        "model": "churn",
        "decided_at": when,
        "rule_version": "test-1",
        "outcome": outcome,
        "reason": "r",
        "live_version": live,
    }
    registry.write(warehouse, Table.DECISIONS, row, "run")


def test_champion_at_reads_the_decisions(warehouse):
    t0 = dt.datetime(2026, 1, 1)
    store_decision(warehouse, "d1", t0, "promote", "v1")
    store_decision(warehouse, "d2", t0 + dt.timedelta(days=30), "keep", "v1")
    store_decision(warehouse, "d3", t0 + dt.timedelta(days=60), "replace", "v2")
    assert registry.champion_at(warehouse, "m1", "churn", t0 - dt.timedelta(days=1)) is None
    assert registry.champion_at(warehouse, "m1", "churn", t0 + dt.timedelta(days=45)) == "v1"
    assert registry.champion_at(warehouse, "m1", "churn", t0 + dt.timedelta(days=61)) == "v2"
    assert registry.current_champion(warehouse, "m1", "churn").decision_id == "d3"
    assert registry.champion_at(warehouse, "m2", "churn", t0 + dt.timedelta(days=61)) is None
