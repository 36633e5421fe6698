"""The model factory stages, per market x model cell: drift, challenger, champion, scores.

`drift_report` -> `challenger_model` -> `champion_model` -> `scores`, each a thin shell over the
pure core (`factory_assets.core.model_*`, `scoring`): decode the cells of the run, call the core per
cell through `run_cells` (one failing cell does not hold back its row), return the audit metadata.
"""

from collections.abc import Callable, Mapping
from pathlib import Path

import dagster as dg
import pandas as pd

from factory_assets.cellrun import cells_ok_spec, run_cells
from factory_assets.core.model.challenger import train_challenger_if_triggered
from factory_assets.core.model.context import StageContext, StageReport
from factory_assets.core.model.decision import decide_champion
from factory_assets.core.model.drift_stage import measure_drift
from factory_assets.core.release.scoring import score_cell
from factory_assets.core.specs import ModelSpec
from factory_assets.partitions import Cell, cell_partitions
from factory_assets.specs_registry import SPECS
from resources.model_store import ModelStoreResource
from resources.reports import ReportStoreResource
from resources.warehouse import WarehouseResource

GROUP = "factory"
Stage = Callable[[StageContext, ModelSpec, Cell], StageReport]


def to_metadata(report: StageReport) -> dict[str, object]:
    """A stage report as Dagster metadata: files as paths, tables as markdown, the rest as values or JSON."""
    metadata: dict[str, object] = {}
    for key, value in report.items():
        if isinstance(value, Path):
            metadata[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, pd.DataFrame):
            metadata[key] = dg.MetadataValue.md(value.to_markdown(index=False))
        elif isinstance(value, Mapping | list):
            metadata[key] = dg.MetadataValue.json(value)
        else:
            metadata[key] = value
    return metadata


def _run(
    context: dg.AssetExecutionContext,
    stage: str,
    upstream: str,
    work: Stage,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
    reports: ReportStoreResource,
) -> dg.MaterializeResult:
    ctx = StageContext(warehouse.get(), model_store.get(), Path(reports.root), context.run_id)
    return run_cells(
        context,
        ctx.warehouse,
        stage,
        [upstream],
        lambda cell: to_metadata(work(ctx, SPECS[cell.model], cell)),
    )


def _stage_asset(name: str, upstream: str, kinds: set[str], work: Stage, doc: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        partitions_def=cell_partitions,
        group_name=GROUP,
        deps=[upstream],
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds=kinds,
        description=doc,
        check_specs=[cells_ok_spec(name, name)],
    )
    def _asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        model_store: ModelStoreResource,
        reports: ReportStoreResource,
    ) -> dg.MaterializeResult:
        return _run(context, name, upstream, work, warehouse, model_store, reports)

    return _asset


drift_report = _stage_asset(
    "drift_report",
    "model_samples",
    {"evidently", "duckdb"},
    lambda ctx, spec, cell: measure_drift(ctx, spec, cell.market, cell.model),
    "Feature drift of today's scoring population against the champion's training reference: PSI per "
    "feature, the share of drifted features (a retrain trigger) and an Evidently HTML report "
    "(`reports/drift/<market>/<model>/<snapshot>.html`). Stored in `factory.drift`. Without a "
    "champion there is nothing to compare, and the report says so.",
)
challenger_model = _stage_asset(
    "challenger_model",
    "drift_report",
    {"catboost", "duckdb"},
    lambda ctx, spec, cell: train_challenger_if_triggered(ctx, spec, cell.market, cell.model),
    "Retrain triggers (no champion, drift share, champion age, realised-performance decay, new "
    "labelled snapshots), each with its value and threshold. When one fires: a seeded CatBoost "
    "challenger, early-stopped on validation, tested out of time (AUC, PR-AUC, log-loss, top-decile "
    "lift and capture, calibration on beta-corrected probabilities), stored by content hash and "
    "registered in `registry.models`. Every evaluation is kept in `registry.retrain_evaluations`.",
)
champion_model = _stage_asset(
    "champion_model",
    "challenger_model",
    {"catboost", "duckdb"},
    lambda ctx, spec, cell: decide_champion(ctx, spec, cell.market, cell.model),
    "The champion decision on the new challenger: both models scored on the challenger's "
    "out-of-time test; promote (no champion), replace (AUC uplift with DeLong significance and "
    "minimum quality), veto (top-decile lift drop) or keep, by the spec's versioned replacement "
    "rules. Each decision is a record in `registry.decisions` with both models' metrics and its "
    "reason; the champion is the live version of the latest decision.",
)
scores = _stage_asset(
    "scores",
    "champion_model",
    {"catboost", "duckdb"},
    lambda ctx, spec, cell: score_cell(ctx, cell.market, cell.model),
    "The latest snapshot's eligible customers scored by the champion: raw score, probability "
    "corrected for the sampling ratio, percentile rank and decile (decile 1 = top 10%), with lineage "
    "(model version, decision id, snapshot, run). Replaces the cell's rows in `scores.scores`, keeps "
    "`scores.score_history`, and measures realised AUC and lift once labels arrive "
    "(`registry.realised_performance`).",
)

ASSETS = [drift_report, challenger_model, champion_model, scores]
CHECKS: list[dg.AssetChecksDefinition] = []  # each stage emits its `<stage>_cells_ok` check itself
