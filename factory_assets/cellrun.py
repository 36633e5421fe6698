"""Run a stage over every cell of a run, one cell's failure isolated from the others.

A stage body is a plain function `work(cell) -> metadata`. Each cell is gated on its upstream
stages (`core.cell_status`); its outcome is recorded; a failing cell is logged with its traceback,
recorded with its reason and reported by the stage's `<stage>_cells_ok` check, which the asset
itself emits (declare it with `cells_ok_spec`: a separate check step would cost a process-wide
warehouse round trip per stage and run). The step itself
fails only when no cell succeeded, so a single-cell run fails loudly and a range run still
delivers its good cells.
"""

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pandas as pd

from factory_assets.core import cell_status
from factory_assets.core.cell_status import StageOutcome
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport
from factory_assets.core.warehouse import MarketWarehouses, Warehouse
from factory_assets.deployment import report_url
from factory_assets.partitions import Cell, cells_of
from factory_assets.specs_registry import SPECS

CellWork = Callable[[Cell], Mapping[str, object]]
CellStage = Callable[[StageContext, ModelSpec, str], StageReport]
"""Every per-cell stage of the core: `stage(ctx, spec, market) -> report`."""
STAGE_RESOURCES = {"deployment", "warehouse", "model_store", "reports", "release_store"}
"""The resources a `StageContext` is built from; every stage asset requires them."""


class StageFailedError(RuntimeError):
    """Every cell of the run failed or was held back at this stage."""


def _table(rows: list[dict[str, str]]) -> dg.MetadataValue:
    return dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))


def to_metadata(
    report: StageReport, reports_dir: Path | None = None, base_url: str = ""
) -> dict[str, object]:
    """A stage report as Dagster metadata, the one place the core's reports are rendered.

    Files under `reports_dir` become links to the scoring service (`<base_url>/reports/...`, a page a
    browser opens), other files paths, tables Markdown (an empty table reads "(none)"), mappings and
    lists JSON, the rest stays as it is.
    """
    metadata: dict[str, object] = {}
    for key, value in report.items():
        url = report_url(base_url, reports_dir, value) if isinstance(value, Path) and reports_dir else None
        if url is not None:
            metadata[key] = dg.MetadataValue.url(url)
        elif isinstance(value, Path):
            metadata[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, pd.DataFrame):
            metadata[key] = dg.MetadataValue.md(value.to_markdown(index=False) if len(value) else "(none)")
        elif isinstance(value, Mapping | list):
            metadata[key] = dg.MetadataValue.json(value)
        else:
            metadata[key] = value
    return metadata


def stage_context(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, market: str
) -> StageContext:
    """The run's `StageContext` for a cell of `market` (its warehouse file), from `STAGE_RESOURCES`."""
    resources = context.resources
    return StageContext(
        warehouse=resources.warehouse.market(market),
        models_dir=Path(resources.model_store.root),
        reports_dir=Path(resources.reports.root),
        releases_dir=Path(resources.release_store.root),
        run_id=context.run.run_id,
        label_columns=resources.deployment.get().label_columns,
    )


def run_stage(
    context: dg.AssetExecutionContext, stage: str, upstream: list[str], work: CellStage
) -> dg.MaterializeResult:
    """`run_cells` for a core stage of the standard shape, its reports rendered by `to_metadata`."""
    base_url = context.resources.deployment.get().settings.api.base_url
    contexts: dict[str, StageContext] = {}

    def run(cell: Cell) -> Mapping[str, object]:
        ctx = contexts.setdefault(cell.market, stage_context(context, cell.market))
        return to_metadata(work(ctx, SPECS[cell.model], cell.market), ctx.reports_dir, base_url)

    return run_cells(context, context.resources.warehouse.get(), stage, upstream, run)


def run_cells(
    context: dg.AssetExecutionContext,
    warehouses: MarketWarehouses,
    stage: str,
    upstream: list[str],
    work: CellWork,
) -> dg.MaterializeResult:
    """Apply `work` to each cell that its upstream stages allow; record and report outcomes.

    Each cell's gate, work and record use its market's warehouse file.
    """
    rows: list[dict[str, str]] = []
    cell_metadata: dict[Cell, Mapping[str, object]] = {}
    # One connection per market file for the whole stage: each DuckDB connection loads the file's
    # catalog, and a cell used two (gate + work, record). The work still releases it around fits
    # and reports, where other processes get their turn.
    with ExitStack() as sessions:
        for cell in cells_of(context):
            warehouse = warehouses.market(cell.market)
            sessions.enter_context(warehouse.session())
            outcome, metadata = _run_cell(context, warehouse, stage, upstream, work, cell)
            if metadata is not None:
                cell_metadata[cell] = metadata
            cell_status.record(warehouse, outcome, context.run_id)
            if outcome.status != "ok":
                context.log.warning(f"{stage} {outcome.status} for cell {cell}: {outcome.message}")
            rows.append({"cell": str(cell), "status": outcome.status, "message": outcome.message[:300]})
    if not cell_metadata:
        detail = "; ".join(f"{r['cell']}: {r['status']} ({r['message']})" for r in rows)
        raise StageFailedError(f"{stage}: no cell succeeded. {detail}")
    metadata: dict[str, object] = {
        "cells_ok": len(cell_metadata),
        "cells_failed": sum(r["status"] == "failed" for r in rows),
        "cells_skipped": sum(r["status"] == "skipped" for r in rows),
        "cells": _table(rows),
    }
    if len(rows) == 1:
        metadata.update(next(iter(cell_metadata.values())))
    else:
        for cell, values in cell_metadata.items():
            summary = {k: v for k, v in values.items() if isinstance(v, int | float | str)}
            metadata[f"{cell.market}/{cell.model}"] = dg.MetadataValue.json(summary)
    return dg.MaterializeResult(metadata=metadata, check_results=[_cells_ok_result(stage, rows)])


def _run_cell(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    stage: str,
    upstream: list[str],
    work: CellWork,
    cell: Cell,
) -> tuple[StageOutcome, Mapping[str, object] | None]:
    """Gate and work one cell inside the stage's session: its outcome, and its metadata if it succeeded.

    A failure is caught and logged, and becomes the outcome.
    """
    problem = cell_status.upstream_problem(warehouse, cell.market, cell.model, upstream)
    if problem is not None:
        return StageOutcome(cell.market, cell.model, stage, "skipped", problem), None
    try:
        metadata = work(cell)
        return StageOutcome(cell.market, cell.model, stage, "ok"), metadata
    except Exception as exc:  # isolated per cell: recorded, logged, reported by the check
        context.log.exception(f"{stage} failed for cell {cell}")
        # The failure may have broken the session's connection (or left it closed, if it struck
        # inside `released()`): the next cell and this record get a fresh one.
        warehouse.renew_session()
        return StageOutcome(cell.market, cell.model, stage, "failed", f"{type(exc).__name__}: {exc}"), None


def cells_ok_spec(asset: str, stage: str) -> dg.AssetCheckSpec:
    """The `<stage>_cells_ok` check an asset using `run_cells` declares (and `run_cells` emits)."""
    return dg.AssetCheckSpec(
        name=f"{stage}_cells_ok",
        asset=asset,
        description=f"Every cell of the run completed stage '{stage}' (failed or skipped cells are named).",
    )


def _cells_ok_result(stage: str, rows: list[dict[str, str]]) -> dg.AssetCheckResult:
    bad = [row for row in rows if row["status"] != "ok"]
    metadata: dict[str, object] = {"cells_not_ok": len(bad)}
    if bad:
        metadata["not_ok"] = _table(bad)
    return dg.AssetCheckResult(check_name=f"{stage}_cells_ok", passed=not bad, metadata=metadata)
