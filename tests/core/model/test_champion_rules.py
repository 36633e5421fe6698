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


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        ("no champion fires alone", {"champion": None}, ["no_champion"]),
        ("drift at its threshold", {"drift": 0.3}, ["drift"]),
        ("champion older than the limit", {"now": NOW + dt.timedelta(days=85)}, ["age"]),
        ("realised AUC dropped 0.06 > 0.05", {"realised": 0.74}, ["decay"]),
        ("realised AUC dropped 0.04", {"realised": 0.76}, []),
        (
            "three labelled snapshots since training",
            {"labelled": [dt.date(2026, m, 28) for m in (3, 4, 5, 6, 7)]},
            ["new_labels"],
        ),
        ("nothing changed", {}, []),
        ("no drift report, no realised performance", {"drift": None, "realised": None}, []),
    ],
)
def test_each_trigger_fires_exactly_when_its_rule_says(case, kwargs, expected):
    assert fired(triggers(**kwargs)) == expected, case


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"drift": 0.3}, "drift share 0.300 >= 0.3"),
        ({}, "no trigger fired"),
        ({}, "drift share 0.100 < 0.3"),
        ({"drift": None}, "no drift report"),
        ({"realised": None}, "no realised performance"),
    ],
)
def test_the_explanation_says_why(kwargs, phrase):
    assert phrase in explain(triggers(**kwargs))


@pytest.mark.parametrize(
    ("name", "value", "threshold"),
    [("drift", 0.1, 0.3), ("age", 10.0, 90), ("decay", 0.01, 0.05), ("new_labels", 1.0, 3)],
)
def test_every_trigger_records_its_value_and_threshold(name, value, threshold):
    by_name = {r.name: r for r in triggers()}
    assert set(by_name) == {"no_champion", "drift", "age", "decay", "new_labels"}
    assert by_name[name].value == pytest.approx(value)
    assert by_name[name].threshold == pytest.approx(threshold)


# --- replacement rules -----------------------------------------------------------------------------


def test_no_champion_promotes():
    verdict = decide("new", None, SameTestComparison(metrics(0.7, 2.0), None, None), RULES)
    assert (verdict.outcome, verdict.live_version, verdict.rule_version) == ("promote", "new", "test-1")


@pytest.mark.parametrize(
    ("case", "challenger", "champion", "test", "outcome", "live", "phrase"),
    [
        (
            "better and significant",
            "new",
            "old",
            comparison(0.75, 3.0, 0.72, 3.0, p=0.01),
            "replace",
            "new",
            "uplift",
        ),
        (
            "better, not significant",
            "new",
            "old",
            comparison(0.75, 3.0, 0.72, 3.0, p=0.2),
            "keep",
            "old",
            "not significant",
        ),
        (
            "uplift below the margin",
            "new",
            "old",
            comparison(0.723, 3.0, 0.72, 3.0, p=0.001),
            "keep",
            "old",
            "uplift",
        ),
        (
            "AUC below the minimum",
            "new",
            "old",
            comparison(0.59, 3.0, 0.50, 3.0, p=0.001),
            "keep",
            "old",
            "minimum quality",
        ),
        (
            "too few test positives",
            "new",
            "old",
            comparison(0.80, 3.0, 0.70, 3.0, p=0.001, positives=5),
            "keep",
            "old",
            "positives",
        ),
        (
            "top-decile lift drops",
            "new",
            "old",
            comparison(0.78, 2.5, 0.72, 2.7, p=0.001),
            "veto",
            "old",
            "lift",
        ),
        (
            "identical challenger",
            "same",
            "same",
            comparison(0.75, 3.0, 0.75, 3.0, p=1.0),
            "keep",
            "same",
            "identical",
        ),
    ],
)
def test_each_replacement_rule_decides_and_says_why(case, challenger, champion, test, outcome, live, phrase):
    verdict = decide(challenger, champion, test, RULES)
    assert (verdict.outcome, verdict.live_version) == (outcome, live), case
    assert phrase in verdict.reason, f"{case}: {verdict.reason}"


def test_compare_on_test_scores_both_models_on_the_same_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    strong = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(size=3000))))
    weak = 1 / (1 + np.exp(-(0.3 * (2 * y - 1) + rng.normal(size=3000))))
    result = compare_on_test(y, strong, 0.5, weak, 1.0)
    assert result.challenger["rows"] == result.champion["rows"] == 3000
    assert result.auc_uplift > 0.1
    assert result.delong_p < 1e-6
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
