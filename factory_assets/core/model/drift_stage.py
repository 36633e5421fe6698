"""The drift stage of one cell: the champion's reference sample against today's population."""

from __future__ import annotations

import pandas as pd

from factory_assets.core.model import registry
from factory_assets.core.model.drift import feature_psi, summarise, write_evidently_report
from factory_assets.core.model.store import ModelStore
from factory_assets.core.names import Table
from factory_assets.core.prep import prepared
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport

TOP_FEATURES = 10


def measure_drift(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """Store the cell's drift (PSI per feature, drift share, Evidently report) in `factory.drift`.

    Without a champion there is nothing to compare: that is recorded and the stage succeeds.
    """
    model = spec.name
    with ctx.warehouse.session():
        snapshot = prepared.latest_snapshot(ctx.warehouse, market, model)
        champion = registry.current_champion(ctx.warehouse, market, model)
        record, current = None, None
        if champion is not None:
            record = registry.model_record(ctx.warehouse, market, model, champion.version)
            current = prepared.load_population(ctx.warehouse, market, model, record.features, snapshot)
    row: dict[str, object] = {
        "market": market,
        "model": model,
        "snapshot_date": snapshot,
        "computed_at": ctx.now,
    }
    if record is None or current is None:
        registry.write(ctx.warehouse, Table.DRIFT, {**row, "status": "no_champion"}, ctx.run_id)
        return {"status": "no champion, nothing to compare", "snapshot_date": str(snapshot)}
    reference = ModelStore(ctx.models_dir).load_reference(record.version, record.reference_sha256)
    if current.empty:
        raise ValueError(f"{market}/{model}: the population of {snapshot} is empty; no drift to measure")
    summary = summarise(
        feature_psi(reference, current, record.features, record.categorical), spec.retrain.feature_psi
    )
    path = ctx.reports_dir / "drift" / market / model / f"{snapshot}.html"
    with ctx.warehouse.released():  # rendering takes seconds: hold no connection meanwhile
        write_evidently_report(
            reference,
            current,
            record.categorical,
            summary,
            spec.retrain.drift_share,
            path,
            seed=spec.sampling.seed,
        )
    registry.write(
        ctx.warehouse,
        Table.DRIFT,
        {
            **row,
            "champion_version": record.version,
            "status": "compared",
            "reference_rows": len(reference),
            "rows": len(current),
            "drift_share": summary.drift_share,
            "psi_threshold": summary.threshold,
            "feature_psi": registry.to_json(summary.psi),
            "drifted_features": registry.to_json(summary.drifted),
            "report_path": str(path),
        },
        ctx.run_id,
    )
    top = sorted(summary.psi.items(), key=lambda item: (-item[1], item[0]))[:TOP_FEATURES]
    return {
        "status": "compared",
        "snapshot_date": str(snapshot),
        "champion_version": record.version,
        "drift_share": round(summary.drift_share, 4),
        "drifted_features": len(summary.drifted),
        "drifted": ", ".join(summary.drifted[:TOP_FEATURES]) or "none",
        "features": len(summary.psi),
        "reference_rows": len(reference),
        "rows": len(current),
        "top_drifted": pd.DataFrame(
            [{"feature": n, "psi": round(v, 4), "drifted": v >= summary.threshold} for n, v in top]
        ),
        "report": path,
        "report_path": str(path),
    }
