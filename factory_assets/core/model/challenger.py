"""The challenger stage of one cell: evaluate the retrain triggers; train, test and register if one fires."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd

from factory_assets.core.model import metrics, registry
from factory_assets.core.model.families import Candidate, FamilyChoice, choose_family
from factory_assets.core.model.store import ModelStore
from factory_assets.core.model.training import (
    TrainedModel,
    population_reference,
    predict_sample_scale,
    split_frame,
)
from factory_assets.core.model.triggers import ChampionFacts, TriggerResult, evaluate_triggers, explain, fired
from factory_assets.core.names import Table
from factory_assets.core.prep import prepared
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport


def _triggers(
    ctx: StageContext, spec: ModelSpec, market: str, model: str
) -> tuple[str | None, list[TriggerResult]]:
    champion = registry.current_champion(ctx.warehouse, market, model)
    if champion is None:
        return None, evaluate_triggers(None, None, None, [], ctx.now, spec.retrain)
    record = registry.model_record(ctx.warehouse, market, model, champion.version)
    facts = ChampionFacts(record.version, record.trained_at, record.test_auc, record.last_snapshot)
    drift = registry.drift_row(ctx.warehouse, market, model)
    drift_share = None
    if (
        drift is not None
        and drift.get("champion_version") == record.version
        and pd.notna(drift.get("drift_share"))
    ):
        drift_share = float(drift["drift_share"])
    realised = registry.latest_realised_auc(ctx.warehouse, market, model, record.version)
    labelled = prepared.labelled_snapshots(ctx.warehouse, market, model)
    return record.version, evaluate_triggers(facts, drift_share, realised, labelled, ctx.now, spec.retrain)


def _test_metrics(
    trained: TrainedModel, candidate: Candidate, test: pd.DataFrame, beta: float, bins: int
) -> dict[str, Any]:
    scores = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
    return metrics.evaluate(test["target"].to_numpy(dtype=int), scores, beta, candidate.calibrator, bins)


def family_test_metrics(
    choice: FamilyChoice, test: pd.DataFrame, beta: float, bins: int
) -> list[dict[str, Any]]:
    """Every family's out-of-time test metrics: the winner's from the stored (refitted) model."""
    return [
        _test_metrics(choice.final if c is choice.winner else c.trained, c, test, beta, bins)
        for c in choice.candidates
    ]


def _without_table(test: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in test.items() if k != "calibration"}


def family_selection(
    choice: FamilyChoice, tests: list[dict[str, Any]], first_fit_test: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The record of the family choice: every family's metrics, the winner and why it won.

    The winner's `test` is its stored model's; when that is a refit, `test_first_fit` keeps its
    first fit's (train split only), so the refit's effect is on record.
    """
    families = []
    for c, test in zip(choice.candidates, tests, strict=True):
        entry = {
            "family": c.trained.family,
            "selected": c is choice.winner,
            "validation": c.validation,
            "test": _without_table(test),
            "calibration": c.calibrator.method,
            "params": c.trained.params,
            "best_iteration": c.trained.best_iteration,
            "fit_seconds": round(c.fit_seconds, 3),
            "refit": c is choice.winner and choice.refitted,
        }
        if entry["refit"]:
            entry["refit_seconds"] = round(choice.refit_seconds, 3)
            if first_fit_test is not None:
                entry["test_first_fit"] = _without_table(first_fit_test)
        families.append(entry)
    return {"winner": choice.winner.trained.family, "reason": choice.reason, "families": families}


def _train(
    ctx: StageContext,
    spec: ModelSpec,
    market: str,
    model: str,
    evaluation_id: str,
    results: list[TriggerResult],
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cell = f"{market}/{model}"
    with ctx.warehouse.session():
        samples = prepared.load_model_samples(ctx.warehouse, market, model)
    with ctx.warehouse.released():  # no connection held while fitting: other markets write
        choice = choose_family(samples, spec.model, cell)
    test = split_frame(samples, "test")
    bins = spec.model.calibration.bins
    tests = family_test_metrics(choice, test, samples.beta, bins)
    test_metrics = tests[choice.candidates.index(choice.winner)]
    first_fit = None
    if choice.refitted:
        first_fit = _test_metrics(choice.winner.trained, choice.winner, test, samples.beta, bins)
    selection = family_selection(choice, tests, first_fit)
    trained = choice.final
    version = ModelStore(ctx.models_dir).save(trained.model)
    with ctx.warehouse.session():
        population = prepared.load_population(ctx.warehouse, market, model, trained.features)
    reference_path, reference_sha = ModelStore(ctx.models_dir).save_reference(
        version, population_reference(population, trained.features, spec.sampling.seed)
    )
    row = {
        "market": market,
        "model": model,
        "model_version": version,
        "spec_hash": spec.spec_hash,
        "trained_at": ctx.now,
        "first_snapshot": samples.first_snapshot,
        "last_snapshot": samples.last_snapshot,
        "test_snapshots": registry.to_json([str(d) for d in samples.test_snapshots]),
        "beta": float(samples.beta),
        "cross_sectional": bool(samples.cross_sectional),
        "features": registry.to_json(trained.features),
        "categorical": registry.to_json(trained.categorical),
        "params": registry.to_json(trained.params),
        "seed": spec.model.seed,
        "best_iteration": trained.best_iteration,
        "metrics": registry.to_json(test_metrics),
        "test_auc": float(test_metrics["auc"]),
        "artefact_path": str(ModelStore(ctx.models_dir).artefact_path(version)),
        "reference_path": str(reference_path),
        "reference_sha256": reference_sha,
        "evaluation_id": evaluation_id,
        "triggers": registry.to_json(fired(results)),
        "family": trained.family,
        "calibration": registry.to_json(choice.winner.calibrator.as_dict()),
        "family_selection": registry.to_json(selection),
    }
    registry.write(ctx.warehouse, Table.MODELS, row, ctx.run_id)
    summary = {
        **test_metrics,
        "family": trained.family,
        "calibration_method": choice.winner.calibrator.method,
        "best_iteration": trained.best_iteration,
        "beta": float(samples.beta),
    }
    return version, summary, selection


def train_challenger_if_triggered(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """Evaluate the retrain triggers; when one fires, train a challenger, test it out of time, register it.

    Either way the evaluation (every trigger with its value, threshold and verdict) is stored in
    `registry.retrain_evaluations`; the champion stage decides on the challenger it names.
    """
    model = spec.name
    with ctx.warehouse.session():
        champion_version, results = _triggers(ctx, spec, market, model)
    evaluation_id = uuid.uuid4().hex
    reason = explain(results)
    version, test_metrics, selection = None, None, None
    if fired(results):
        version, test_metrics, selection = _train(ctx, spec, market, model, evaluation_id, results)
    registry.write(
        ctx.warehouse,
        Table.RETRAIN_EVALUATIONS,
        {
            "evaluation_id": evaluation_id,
            "market": market,
            "model": model,
            "evaluated_at": ctx.now,
            "champion_version": champion_version,
            "triggers": registry.to_json([r.as_dict() for r in results]),
            "fired": registry.to_json(fired(results)),
            "outcome": "trained" if version else "no_trigger",
            "reason": reason,
            "challenger_version": version,
        },
        ctx.run_id,
    )
    return _report(evaluation_id, results, reason, version, test_metrics, selection)


def _report(
    evaluation_id: str,
    results: list[TriggerResult],
    reason: str,
    version: str | None,
    test_metrics: dict[str, Any] | None,
    selection: dict[str, Any] | None = None,
) -> StageReport:
    report: dict[str, object] = {
        "outcome": "trained" if version else "no trigger fired: nothing trained",
        "reason": reason,
        "evaluation_id": evaluation_id,
        "triggers": pd.DataFrame([r.as_dict() for r in results]),
    }
    if version and test_metrics:
        report["challenger_version"] = version
        summary = {k: v for k, v in test_metrics.items() if k != "calibration"}
        report.update({f"test_{k}": round(v, 4) if isinstance(v, float) else v for k, v in summary.items()})
        report["calibration"] = pd.DataFrame(test_metrics["calibration"])
    if selection:
        report["family_reason"] = selection["reason"]
        report["families"] = families_table(selection)
    return report


def families_table(selection: dict[str, Any]) -> pd.DataFrame:
    """One row per family: validation and test AUC, test ECE, whether it was selected."""
    return pd.DataFrame(
        [
            {
                "family": f["family"],
                "selected": f["selected"],
                "validation_auc": round(float(f["validation"]["auc"]), 4),
                "test_auc": round(float(f["test"]["auc"]), 4),
                "test_ece": round(float(f["test"]["ece"]), 4),
                "calibration": f["calibration"],
                "fit_seconds": f["fit_seconds"],
                "refit": bool(f.get("refit", False)),
            }
            for f in selection["families"]
        ]
    )
