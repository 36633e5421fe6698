"""The champion stage of one cell: decide on the new challenger and store the decision record."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd

from factory_assets.core.model import registry
from factory_assets.core.model.champion import SameTestComparison, compare_on_test, decide
from factory_assets.core.model.registry import ChampionPointer, ModelRecord
from factory_assets.core.model.score_reference import record_score_reference
from factory_assets.core.model.store import ModelStore
from factory_assets.core.model.training import predict_sample_scale, split_frame
from factory_assets.core.names import Table
from factory_assets.core.prep import prepared
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport

KEYS = ["customer_id", "snapshot_date"]
SHOWN_METRICS = (
    "auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "lift_top_decile",
    "capture_top_decile",
    "mean_predicted",
)


def _score(model: object, frame: pd.DataFrame, record: ModelRecord) -> np.ndarray:
    return predict_sample_scale(model, frame, record.features, record.categorical)


def _with_champion_features(
    ctx: StageContext, market: str, model: str, test: pd.DataFrame, record: ModelRecord
) -> pd.DataFrame:
    """The test rows with the champion's features, fetched from the population when the sample lacks some."""
    missing = [f for f in record.features if f not in test.columns]
    if not missing:
        return test
    keyed = test.assign(snapshot_date=pd.to_datetime(test["snapshot_date"]))
    parts = []
    for snapshot in sorted(keyed["snapshot_date"].dt.date.unique()):
        population = prepared.load_population(ctx.warehouse, market, model, missing, snapshot)
        parts.append(population[[*KEYS, *missing]])
    extra = pd.concat(parts).assign(snapshot_date=lambda f: pd.to_datetime(f["snapshot_date"]))
    merged = keyed.merge(extra, on=KEYS, how="left", indicator=True)
    absent = int((merged["_merge"] != "both").sum())
    if absent:
        raise ValueError(
            f"{market}/{model}: {absent} test rows are missing from the population, so champion "
            f"{record.version[:12]} cannot be scored on the challenger's test (features {missing})"
        )
    return merged.drop(columns="_merge")


def _compare(
    ctx: StageContext, market: str, model: str, challenger: ModelRecord, champion: ChampionPointer | None
) -> tuple[SameTestComparison, ModelRecord | None]:
    test = split_frame(prepared.load_model_samples(ctx.warehouse, market, model, splits=("test",)), "test")
    y = test["target"].to_numpy(dtype=int)
    challenger_scores = _score(ModelStore(ctx.models_dir).load(challenger.version), test, challenger)
    if champion is None:
        return compare_on_test(y, challenger_scores, challenger.beta, None, None, challenger.calibrator), None
    if champion.version == challenger.version:
        return compare_on_test(
            y,
            challenger_scores,
            challenger.beta,
            challenger_scores,
            challenger.beta,
            challenger.calibrator,
            challenger.calibrator,
        ), challenger
    record = registry.model_record(ctx.warehouse, market, model, champion.version)
    frame = _with_champion_features(ctx, market, model, test, record)
    champion_scores = _score(ModelStore(ctx.models_dir).load(record.version), frame, record)
    comparison = compare_on_test(
        y,
        challenger_scores,
        challenger.beta,
        champion_scores,
        record.beta,
        challenger.calibrator,
        record.calibrator,
    )
    return comparison, record


def decide_champion(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """Apply the champion rules to the latest undecided challenger and store the decision.

    A challenger made live also scores the snapshot before the latest, stored as Data Checker 2's
    reference for its first release (`core.model.score_reference`).

    With no new challenger nothing is decided (and the report says so). A missing or corrupt
    artefact fails the cell before anything is written: the champion record stays as it was.
    """
    model = spec.name
    with ctx.warehouse.session():  # short work: two predictions on the out-of-time test
        return _decide(ctx, spec, market, model)


def _decide(ctx: StageContext, spec: ModelSpec, market: str, model: str) -> StageReport:
    evaluation = registry.latest_evaluation(ctx.warehouse, market, model)
    champion = registry.current_champion(ctx.warehouse, market, model)
    if evaluation is None or not isinstance(evaluation.get("challenger_version"), str):
        return _no_decision("no new challenger (the last retrain evaluation trained nothing)", champion)
    if registry.is_decided(ctx.warehouse, evaluation["evaluation_id"]):
        return _no_decision("no new challenger (the latest challenger is already decided)", champion)
    challenger = registry.model_record(ctx.warehouse, market, model, evaluation["challenger_version"])
    comparison, champion_record = _compare(ctx, market, model, challenger, champion)
    champion_version = champion_record.version if champion_record else None
    verdict = decide(challenger.version, champion_version, comparison, spec.replacement)
    decision_id = uuid.uuid4().hex
    reference = None
    if verdict.live_version == challenger.version and challenger.version != champion_version:
        # before the decision is stored: a failure leaves the champion as it was
        reference = record_score_reference(ctx, market, model, challenger, decision_id)
    registry.write(
        ctx.warehouse,
        Table.DECISIONS,
        {
            "decision_id": decision_id,
            "market": market,
            "model": model,
            "decided_at": ctx.now,
            "rule_version": verdict.rule_version,
            "evaluation_id": evaluation["evaluation_id"],
            "triggers": evaluation["triggers"],
            "champion_version": champion_version,
            "challenger_version": challenger.version,
            "champion_metrics": registry.to_json(comparison.champion) if comparison.champion else None,
            "challenger_metrics": registry.to_json(comparison.challenger),
            "champion_auc": comparison.champion["auc"] if comparison.champion else None,
            "challenger_auc": comparison.challenger["auc"],
            "auc_uplift": comparison.auc_uplift,
            "delong_p": comparison.delong_p,
            "outcome": verdict.outcome,
            "reason": verdict.reason,
            "live_version": verdict.live_version,
            "challenger_family": challenger.family,
            "champion_family": champion_record.family if champion_record else None,
            "family_selection": registry.to_json(challenger.family_selection),
        },
        ctx.run_id,
    )
    report: dict[str, object] = {
        "outcome": verdict.outcome,
        "reason": verdict.reason,
        "decision_id": decision_id,
        "rule_version": verdict.rule_version,
        "live_version": verdict.live_version,
        "challenger_version": challenger.version,
        "champion_version": champion_version or "none",
        "challenger_family": challenger.family,
        "champion_family": champion_record.family if champion_record else "none",
        "family_reason": challenger.family_selection.get("reason", "n/a"),
        "challenger_auc": round(float(comparison.challenger["auc"]), 6),
        "champion_auc": _rounded(comparison.champion["auc"] if comparison.champion else None),
        "auc_uplift": _rounded(comparison.auc_uplift),
        "delong_p": _rounded(comparison.delong_p),
        "same_test_metrics": _metrics_table(comparison),
    }
    if reference is not None:
        report["score_reference"] = (
            f"{reference.rows} scores on {reference.snapshot_date} (mean probability "
            f"{reference.mean_probability:.4f}): Data Checker 2's reference for the next release"
        )
    return report


def _rounded(value: float | None) -> float | str:
    return "n/a" if value is None else round(float(value), 6)


def _metrics_table(comparison: SameTestComparison) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for name in (*SHOWN_METRICS, "rows", "positives"):
        champion = comparison.champion[name] if comparison.champion else None
        rows.append({"metric": name, "challenger": comparison.challenger[name], "champion": champion})
    return pd.DataFrame(rows)


def _no_decision(why: str, champion: ChampionPointer | None) -> StageReport:
    return {
        "outcome": "no decision",
        "reason": why,
        "live_version": champion.version if champion else "none",
        "live_decision_id": champion.decision_id if champion else "none",
    }
