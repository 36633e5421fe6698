"""Stages 5 and 6: Data Checker 2 on `scores`, `released_scores`, and the `factory_status` grid.

Data Checker 2's Dagster checks are NOT blocking, on purpose. In a range run (one market's row of
models) a partitioned check is evaluated once for the whole range, and a blocking failure would stop
the release of every cell of the row, the good ones too; in a single-cell run it would stop the
release before it could record that the cell was held back. The real gate is in the release itself
(`core.release.gate`), evaluated per cell: failing scores are never published, the last good release
stays in force, and the held-back cell is recorded as a failed `released_scores` outcome with the
reason. The checks report the same rules per cell (failing cells named in their metadata) so the
scores asset's check history shows them too.
"""

from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pandas as pd

from factory_assets.cellrun import STAGE_RESOURCES, cells_ok_spec, run_cells, stage_context
from factory_assets.core import cell_status
from factory_assets.core.clock import utc_now
from factory_assets.core.model.store import ModelStore
from factory_assets.core.names import Stage
from factory_assets.core.release.gate import ReleaseOutcome, evaluate_cell, release_cell
from factory_assets.core.release.score_checks import RULES, RuleResult
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.status.grid import build_status, format_status_table, store_status
from factory_assets.core.status.reports import write_reports
from factory_assets.core.warehouse import MarketWarehouses
from factory_assets.partitions import Cell, cell_partitions, cells_of, markets_partitions
from factory_assets.specs_registry import DEPLOYMENT, SPECS
from resources.model_store import ModelStoreResource
from resources.release_store import ReleaseStoreResource
from resources.reports import ReportStoreResource
from resources.warehouse import WarehouseResource

STAGE = Stage.RELEASED_SCORES
UPSTREAM = [Stage.SCORES]
CHECK_PREFIX = "dc2_"


class ReleaseHeldBackError(RuntimeError):
    """A cell's scores failed Data Checker 2; its last good release stays in force."""


def _spec(cell: Cell) -> ModelSpec:
    """The cell's spec with its market's Data Checker 2 settings from the deployment."""
    if cell.model not in SPECS:
        raise KeyError(f"model '{cell.model}' has no spec in model_specs/: it cannot be released")
    return DEPLOYMENT.spec_for(SPECS[cell.model], cell.market)


def _md(rows: list[dict[str, object]]) -> dg.MetadataValue:
    return dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))


def _checks_table(results: list[RuleResult]) -> dg.MetadataValue:
    return _md(
        [
            {"check": r.check, "passed": r.passed, "detail": r.detail[:200], "reference": r.reference[:160]}
            for r in results
        ]
    )


def _held_back_message(outcome: ReleaseOutcome) -> str:
    serving = outcome.in_force.release_id if outcome.in_force else "nothing (never released)"
    return f"held back: {outcome.reason}. Still serving {serving}."


def _held_back_observation(cell: Cell, outcome: ReleaseOutcome) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=STAGE,
        partition=str(cell.key),
        metadata={
            "status": "held_back",
            "reason": outcome.reason,
            "still_serving": outcome.in_force.release_id if outcome.in_force else "nothing (never released)",
            "held_back_id": outcome.release_id,
            "data_checker_2": _checks_table(outcome.results),
        },
    )


def _release_metadata(outcome: ReleaseOutcome, store: ReleaseStore) -> dict[str, object]:
    manifest = outcome.in_force
    assert manifest is not None
    folder = store.cell_dir(manifest.market, manifest.model)
    metadata: dict[str, object] = {
        "status": outcome.status,
        "release_id": manifest.release_id,
        "rows": manifest.rows,
        "snapshot_date": manifest.snapshot_date,
        "model_version": manifest.model_version,
        "output_format": manifest.output_format,
        "sha256": manifest.sha256,
        "release_file": dg.MetadataValue.path(str(folder / manifest.file)),
        "data_checker_2": _checks_table(outcome.results),
    }
    if manifest.csv_file:
        metadata["csv_file"] = dg.MetadataValue.path(str(folder / manifest.csv_file))
    return metadata


@dg.asset(
    partitions_def=cell_partitions,
    group_name="release",
    deps=[Stage.SCORES],
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"parquet"},
    check_specs=[cells_ok_spec(STAGE, STAGE)],
    required_resource_keys=STAGE_RESOURCES,
)
def released_scores(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The scores consumers get: published only when they pass Data Checker 2.

    Per cell, the gate is evaluated again here (one row per eligible customer, no duplicates, values
    finite and in range, the market's latest snapshot scored, mean close to the recent realised rate
    or the champion's test rate, and the probability distribution and ranks stable vs the same
    model's last release; a new champion's distribution is compared with its own scores recorded at
    its decision, and its ranks are not compared). Passing scores become an immutable release file
    (`releases/<market>/<model>/<release_id>.parquet`, CSV too when the spec asks) in the spec's output
    format, and the cell's `current.json` manifest is swapped atomically. Failing scores are held back:
    the previous release stays in force, `release.releases` records why, and the cell shows as failed.
    """
    store = ReleaseStore(Path(context.resources.release_store.root))

    def work(cell: Cell) -> dict[str, object]:
        outcome = release_cell(stage_context(context, cell.market), _spec(cell), cell.market)
        if outcome.held_back:
            # an observation keeps the verdict in the asset's history even when the step then fails
            context.log_event(_held_back_observation(cell, outcome))
            raise ReleaseHeldBackError(_held_back_message(outcome))
        context.log.info(f"{cell}: {outcome.status} {outcome.release_id}")
        return _release_metadata(outcome, store)

    return run_cells(context, context.resources.warehouse.get(), STAGE, UPSTREAM, work)


def _evaluate_cells(
    context: dg.AssetCheckExecutionContext,
    warehouses: MarketWarehouses,
    store: ReleaseStore,
    models: ModelStore,
) -> tuple[dict[Cell, list[RuleResult]], list[dict[str, str]]]:
    evaluated: dict[Cell, list[RuleResult]] = {}
    not_evaluated: list[dict[str, str]] = []
    with ExitStack() as sessions:  # one connection per market file for the step, as in `run_cells`
        for cell in cells_of(context):
            wh = warehouses.market(cell.market)
            sessions.enter_context(wh.session())
            problem = cell_status.upstream_problem(wh, cell.market, cell.model, UPSTREAM)
            if problem is not None:
                not_evaluated.append({"cell": str(cell), "reason": problem[:200]})
                continue
            try:
                spec = _spec(cell)
                run_id = context.run.run_id
                evaluated[cell] = evaluate_cell(wh, store, spec, cell.market, run_id, models)[1]
            except Exception as exc:  # one unreadable cell must not hide the verdict on the others
                context.log.exception(f"Data Checker 2 could not evaluate {cell}")
                wh.renew_session()  # the failure may have broken the connection
                message = f"{type(exc).__name__}: {exc}"
                evaluated[cell] = [RuleResult(rule, False, None, None, message) for rule in RULES]
    return evaluated, not_evaluated


def _rule_result(
    rule: str, evaluated: dict[Cell, list[RuleResult]], skipped: list[dict[str, str]]
) -> dg.AssetCheckResult:
    failing = [
        {
            "cell": str(cell),
            "value": r.value,
            "threshold": r.threshold,
            "detail": r.detail[:300],
            "reference": r.reference[:200],
        }
        for cell, results in evaluated.items()
        for r in results
        if r.check == rule and not r.passed
    ]
    metadata: dict[str, object] = {
        "cells_evaluated": len(evaluated),
        "cells_failed": len(failing),
        "failing_cells": ", ".join(row["cell"] for row in failing) or "none",
    }
    if failing:
        metadata["failures"] = _md(failing)
    if skipped:
        metadata["not_evaluated"] = _md(skipped)
    return dg.AssetCheckResult(
        asset_key=Stage.SCORES,
        check_name=f"{CHECK_PREFIX}{rule}",
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


RULE_DESCRIPTIONS = {name: (rule.__doc__ or name).strip() for name, rule in RULES.items()}

DATA_CHECKER_2_SPECS = [
    dg.AssetCheckSpec(
        name=f"{CHECK_PREFIX}{rule}",
        asset=Stage.SCORES,
        description=f"Data Checker 2: {description} Not blocking: the release re-checks every cell.",
        blocking=False,
        partitions_def=cell_partitions,
    )
    for rule, description in RULE_DESCRIPTIONS.items()
]


@dg.multi_asset_check(specs=DATA_CHECKER_2_SPECS, name="data_checker_2")
def data_checker_2(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    release_store: ReleaseStoreResource,
    model_store: ModelStoreResource,
):
    """Data Checker 2 on every cell of the run; results stored in `ops.score_check_results`."""
    evaluated, skipped = _evaluate_cells(context, warehouse.get(), release_store.get(), model_store.get())
    for rule in RULES:
        yield _rule_result(rule, evaluated, skipped)


@dg.asset(group_name="release", deps=[released_scores], kinds={"duckdb", "html"})
def factory_status(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    reports: ReportStoreResource,
    release_store: ReleaseStoreResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    """The market x model grid the analyst opens first, worst cells first.

    Per cell: the market's latest Data Checker 1 result, every stage's outcome, the champion (version,
    age in days, test AUC), drift share, the last decision and its reason, the release in force and
    its state (released, released under override, held back, withdrawn: who and why), and "stale
    since <date>" when the live release is older than the spec's `max_release_age_days`. Stored as
    `ops.factory_status` and written as the static page `reports/status.html`, which links a model
    card per released cell (`reports/cards/<market>/<model>.html`: metrics, gains, lift, calibration,
    score distribution, realised AUC, drift, decisions, importance) and its drift report; the scoring
    service serves them under `/reports/` (the links below use the deployment's `api.base_url`).
    """
    markets = context.instance.get_dynamic_partitions(markets_partitions.name)
    wh = warehouse.union(markets)
    now = utc_now()
    stale_after = {name: spec.score_checks.max_release_age_days for name, spec in SPECS.items()}
    grid = build_status(wh, markets, sorted(SPECS), now, stale_after)
    store_status(warehouse.get(), grid, context.run_id)
    reports_dir = Path(reports.root)
    written = write_reports(wh, release_store.get(), model_store.get(), SPECS, grid, reports_dir, now)

    def url(path: Path) -> str:
        return DEPLOYMENT.report_url(path, reports_dir) or str(path)

    counts = grid["health"].value_counts()
    return dg.MaterializeResult(
        metadata={
            "cells": len(grid),
            "failing": int(counts.get("failing", 0)),
            "attention": int(counts.get("attention", 0)),
            "ok": int(counts.get("ok", 0)),
            "grid": dg.MetadataValue.md(format_status_table(grid, tablefmt="github")),
            "status_page": dg.MetadataValue.url(url(written["status"])),
            "model_cards": _md(
                [{"cell": cell, "card": url(path)} for cell, path in written.items() if cell != "status"]
                or [{"cell": "none", "card": "no cell released yet"}]
            ),
        }
    )


ASSETS = [released_scores, factory_status]
CHECKS = [data_checker_2]
