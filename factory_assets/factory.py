"""The model factory stages, per market x model cell: drift, challenger, champion, scores.

`drift_report` -> `challenger_model` -> `champion_model` -> `scores`, each a thin shell over a core
stage of the standard shape (`core.model`, `core.release.scoring`): `run_stage` decodes the cells of
the run, calls the stage per cell (one failing cell does not hold back its row) and renders its
report as the audit metadata.
"""

import dagster as dg

from factory_assets.cellrun import STAGE_RESOURCES, CellStage, cells_ok_spec, run_stage
from factory_assets.core.model.challenger import train_challenger_if_triggered
from factory_assets.core.model.decision import decide_champion
from factory_assets.core.model.drift_stage import measure_drift
from factory_assets.core.names import Stage
from factory_assets.core.release.scoring import score_cell
from factory_assets.partitions import cell_partitions

GROUP = "factory"


def _stage_asset(name: str, upstream: str, kinds: set[str], work: CellStage, doc: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        partitions_def=cell_partitions,
        group_name=GROUP,
        deps=[upstream],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds=kinds,
        description=doc,
        check_specs=[cells_ok_spec(name, name)],
        required_resource_keys=STAGE_RESOURCES,
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return run_stage(context, name, [upstream], work)

    return _asset


drift_report = _stage_asset(
    Stage.DRIFT_REPORT,
    Stage.MODEL_SAMPLES,
    {"evidently", "duckdb"},
    measure_drift,
    "Feature drift of today's scoring population against the champion's training reference: PSI per "
    "feature, the share of drifted features (a retrain trigger) and an Evidently HTML report "
    "(`reports/drift/<market>/<model>/<snapshot>.html`). Stored in `factory.drift`. Without a "
    "champion there is nothing to compare, and the report says so.",
)
challenger_model = _stage_asset(
    Stage.CHALLENGER_MODEL,
    Stage.DRIFT_REPORT,
    {"catboost", "scikit-learn", "duckdb"},
    train_challenger_if_triggered,
    "Retrain triggers (no champion, drift share, champion age, realised-performance decay, new "
    "labelled snapshots), each with its value and threshold. When one fires: every family of the "
    "spec (CatBoost early-stopped on validation; a logistic regression with C by seeded CV) is "
    "fitted, the best validation AUC becomes the challenger (every family's metrics and the reason "
    "are recorded), calibrated on validation, tested out of time (AUC, PR-AUC, log-loss, Brier, ECE, "
    "top-decile lift and capture, calibration table), stored by content hash and registered in "
    "`registry.models`. Every evaluation is kept in `registry.retrain_evaluations`.",
)
champion_model = _stage_asset(
    Stage.CHAMPION_MODEL,
    Stage.CHALLENGER_MODEL,
    {"catboost", "duckdb"},
    decide_champion,
    "The champion decision on the new challenger: both models scored on the challenger's "
    "out-of-time test; promote (no champion), replace (AUC uplift with DeLong significance and "
    "minimum quality), veto (top-decile lift drop) or keep, by the spec's versioned replacement "
    "rules. Each decision is a record in `registry.decisions` with both models' metrics and its "
    "reason; the champion is the live version of the latest decision.",
)
scores = _stage_asset(
    Stage.SCORES,
    Stage.CHAMPION_MODEL,
    {"catboost", "duckdb"},
    score_cell,
    "The latest snapshot's eligible customers scored by the champion: raw score, probability "
    "corrected for the sampling ratio, percentile rank and decile (decile 1 = top 10%), with lineage "
    "(model version, decision id, snapshot, run). Replaces the cell's rows in `scores.scores`, keeps "
    "`scores.score_history`, and measures realised AUC and lift once labels arrive "
    "(`registry.realised_performance`).",
)

ASSETS = [drift_report, challenger_model, champion_model, scores]
CHECKS: list[dg.AssetChecksDefinition] = []  # each stage emits its `<stage>_cells_ok` check itself
