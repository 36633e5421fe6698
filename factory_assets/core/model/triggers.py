"""Retrain triggers: when a cell trains a challenger. Any trigger that fires is enough.

Every trigger is evaluated and reported with its measured value and threshold, whether it fires or
not, so that "nothing was trained" is as auditable as a retrain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from factory_assets.core.specs import RetrainRules


@dataclass(frozen=True)
class ChampionFacts:
    """What the triggers need to know about the live champion."""

    version: str
    trained_at: dt.datetime
    test_auc: float
    last_snapshot: dt.date
    """The latest snapshot of its data window (its out-of-time test snapshot)."""


@dataclass(frozen=True)
class TriggerResult:
    """One trigger: did it fire, on what value against what threshold, and why."""

    name: str
    fired: bool
    value: float | None
    threshold: float | None
    detail: str

    def as_dict(self) -> dict[str, object]:
        """A plain mapping for metadata and the registry."""
        return asdict(self)


def _drift(share: float | None, rules: RetrainRules) -> TriggerResult:
    if share is None:
        return TriggerResult("drift", False, None, rules.drift_share, "no drift report for the champion")
    fired = share >= rules.drift_share
    detail = f"drift share {share:.3f} {'>=' if fired else '<'} {rules.drift_share}"
    return TriggerResult("drift", fired, share, rules.drift_share, detail)


def _age(champion: ChampionFacts, now: dt.datetime, rules: RetrainRules) -> TriggerResult:
    days = (now - champion.trained_at).total_seconds() / 86_400
    fired = days >= rules.max_champion_age_days
    detail = f"champion trained {days:.1f} days ago ({'>=' if fired else '<'} {rules.max_champion_age_days})"
    return TriggerResult("age", fired, round(days, 3), float(rules.max_champion_age_days), detail)


def _decay(champion: ChampionFacts, realised_auc: float | None, rules: RetrainRules) -> TriggerResult:
    if realised_auc is None:
        return TriggerResult("decay", False, None, rules.performance_decay, "no realised performance yet")
    drop = champion.test_auc - realised_auc
    fired = drop > rules.performance_decay
    detail = (
        f"realised AUC {realised_auc:.4f} vs test AUC {champion.test_auc:.4f}: drop {drop:.4f} "
        f"{'>' if fired else '<='} {rules.performance_decay}"
    )
    return TriggerResult("decay", fired, drop, rules.performance_decay, detail)


def _new_labels(champion: ChampionFacts, labelled: list[dt.date], rules: RetrainRules) -> TriggerResult:
    new = sorted(d for d in labelled if d > champion.last_snapshot)
    fired = len(new) >= rules.min_new_label_snapshots
    detail = (
        f"{len(new)} labelled snapshot(s) after {champion.last_snapshot} "
        f"({'>=' if fired else '<'} {rules.min_new_label_snapshots})"
    )
    return TriggerResult("new_labels", fired, float(len(new)), float(rules.min_new_label_snapshots), detail)


def evaluate_triggers(
    champion: ChampionFacts | None,
    drift_share: float | None,
    realised_auc: float | None,
    labelled_snapshots: list[dt.date],
    now: dt.datetime,
    rules: RetrainRules,
) -> list[TriggerResult]:
    """Every retrain trigger of the cell; without a champion only `no_champion` applies (and fires)."""
    if champion is None:
        return [TriggerResult("no_champion", True, None, None, "no champion yet: train the first model")]
    return [
        TriggerResult("no_champion", False, None, None, f"champion {champion.version[:12]} is live"),
        _drift(drift_share, rules),
        _age(champion, now, rules),
        _decay(champion, realised_auc, rules),
        _new_labels(champion, labelled_snapshots, rules),
    ]


def fired(results: list[TriggerResult]) -> list[str]:
    """Names of the triggers that fired."""
    return [r.name for r in results if r.fired]


def explain(results: list[TriggerResult]) -> str:
    """One line: which triggers fired, or why none did."""
    names = fired(results)
    if names:
        return "retrain: " + "; ".join(r.detail for r in results if r.fired)
    return "no trigger fired: " + "; ".join(r.detail for r in results if r.name != "no_champion")
