"""CAR ingest: the `car_snapshots` asset per market, Data Checker 1 on it, and `car_ingest_job`.

Data Checker 1 is computed once, inside `car_snapshots` right after the ingest, and stored with
the market's gate; each asset check reports its stored row, so the UI and the gate agree.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from factory_assets.core.car import checks as car_checks
from factory_assets.core.car.admit import CheckSettings, SnapshotVerdict, admit_market
from factory_assets.core.car.check_store import latest_snapshot, stored_result
from factory_assets.core.car.checks import CarCheckThresholds, CheckResult
from factory_assets.core.car.ingest import Rejection, collect_inputs, market_summary
from factory_assets.core.names import Stage, car_table
from factory_assets.partitions import check_market, markets_partitions
from resources.deployment import DeploymentResource
from resources.landing import LandingResource
from resources.warehouse import WarehouseResource


class CarSnapshotsConfig(dg.Config):
    """Run configuration of `car_snapshots`."""

    check_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Overrides of Data Checker 1 thresholds (fields of CarCheckThresholds) for this run, "
        "on top of the deployment's (config/factory.yaml), e.g. {'min_volume_ratio': 0.4}; unknown "
        "names are rejected.",
    )


def _md_table(rows: list[dict[str, object]]) -> dg.MetadataValue:
    return dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))


def _ingest_metadata(
    summary: dict[str, object], new_dates: list[str], unchanged: int, rejected: list[Rejection]
) -> dict[str, object]:
    metadata: dict[str, object] = {
        **summary,
        "new_snapshot_dates": dg.MetadataValue.json(new_dates),
        "snapshots_ingested": len(new_dates),
        "snapshots_unchanged": unchanged,
        "files_rejected": len(rejected),
    }
    if rejected:
        rows = [{"file": r.source, "reason": r.reason[:500]} for r in rejected]
        metadata["rejected_files"] = _md_table(rows)
    return metadata


def _check_metadata(results: list[CheckResult]) -> dg.MetadataValue:
    rows = [
        {"check": r.check, "severity": r.severity, "passed": r.passed, "summary": r.summary[:300]}
        for r in results
    ]
    return _md_table(rows)


def _verdict_metadata(verdicts: list[SnapshotVerdict]) -> dg.MetadataValue:
    rows = [
        {
            "snapshot": str(v.snapshot_date),
            "verdict": v.verdict,
            "admitted": v.admitted,
            "restatement": v.restatement,
            "reasons": "; ".join(v.reasons)[:300],
        }
        for v in verdicts
    ]
    return _md_table(rows)


@dg.asset(
    partitions_def=markets_partitions,
    group_name="ingest",
    kinds={"duckdb"},
    backfill_policy=dg.BackfillPolicy.multi_run(1),
)
def car_snapshots(
    context: dg.AssetExecutionContext,
    config: CarSnapshotsConfig,
    deployment: DeploymentResource,
    warehouse: WarehouseResource,
    landing: LandingResource,
) -> dg.MaterializeResult:
    """The market's Customer Analytical Record in `car.<market>`: one row per customer per snapshot.

    New or changed snapshot files (content hash) are staged: validated against the CAR contract,
    tested for values that cannot be stored unchanged, and checked by Data Checker 1 beside the
    snapshots before them (and against the version of their month they replace). Only a snapshot
    whose own verdict does not block becomes part of `car.<market>` (one atomic replace with its
    verdict); a rejected or blocked one is not written (the previous data stays), is checked again
    on the next run, and fails the market's gate for the model stages.
    """
    market = check_market(context.partition_key, "car_snapshots")
    wh, settings = warehouse.market(market), deployment.get()
    contract = settings.contract
    defaults, severities = settings.checker_one(market)
    thresholds = CarCheckThresholds.model_validate({**defaults.model_dump(), **config.check_thresholds})
    folder = landing.folder()
    inputs, problems = collect_inputs(folder, landing.external_sources(), market, contract.customer_key)
    if not inputs and not problems and latest_snapshot(wh, market) is None:
        settling = len(folder.scan().pending)
        raise dg.Failure(
            f"market '{market}': no settled CAR file in {folder.root / market} ({settling} still being "
            f"copied) and nothing held in {car_table(market)}"
        )
    checker = CheckSettings(
        thresholds,
        severities,
        contract.customer_key,
        settings.label_columns,
        settings.accepts_restatements(market),
    )
    admitted = admit_market(wh, market, inputs, problems, contract, context.run_id, checker)
    report, results, gate = admitted.ingest, admitted.results, admitted.gate
    rejected = [*problems, *report.rejected]
    for rejection in rejected:
        context.log.warning(f"rejected for market '{market}': {rejection.reason}")
    for verdict in admitted.verdicts:
        context.log.info(f"'{market}' snapshot {verdict.snapshot_date}: {verdict.verdict} {verdict.reasons}")
    context.log.info(f"Data Checker 1 for '{market}' on {admitted.checked}: {gate.status} ({gate.message})")
    new_dates = [str(d) for d in report.ingested]
    metadata = _ingest_metadata(
        market_summary(wh, market, contract.customer_key), new_dates, len(report.unchanged), rejected
    )
    metadata |= {
        "checked_snapshot": str(admitted.checked),
        Stage.DATA_CHECKER_1: gate.status,
        "gate_message": gate.message,
    }
    metadata["checks"] = _check_metadata(results)
    if admitted.verdicts:
        metadata["snapshot_verdicts"] = _verdict_metadata(admitted.verdicts)
    return dg.MaterializeResult(metadata=metadata)


def _failure_tables(prefix: str, detail: dict[str, object]) -> dict[str, object]:
    """The contract check's rejected files and their pandera failure cases, as tables."""
    rejected = detail.get("rejected") or []
    if not rejected:
        return {}
    files = [
        {"file": r["file"], "snapshot_date": r["snapshot_date"], "reason": r["reason"][:500]}
        for r in rejected
    ]
    cases = [{"file": r["file"], **case} for r in rejected for case in r["failure_cases"]]
    tables = {f"{prefix}rejected_files": _md_table(files)}
    if cases:
        tables[f"{prefix}failure_cases"] = _md_table(cases)
    return tables


def _market_result(warehouse: WarehouseResource, market: str, check: str) -> dict[str, object]:
    return stored_result(warehouse.market(market), market, check)


def _stored_check(check: str) -> dg.AssetChecksDefinition:
    blocking = car_checks.CHECKS[check] == "blocking"

    @dg.asset_check(
        asset=car_snapshots,
        name=check,
        partitions_def=markets_partitions,
        blocking=blocking,
        description=f"Data Checker 1 ({car_checks.CHECKS[check]} unless the deployment says otherwise): "
        f"{car_checks.DESCRIPTIONS[check]}",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        rows = {market: _market_result(warehouse, market, check) for market in context.partition_keys}
        failed = [market for market, row in rows.items() if not row["passed"]]
        metadata: dict[str, object] = {"markets_failed": dg.MetadataValue.json(failed)}
        for market, row in rows.items():
            prefix = "" if len(rows) == 1 else f"{market}/"
            metadata[f"{prefix}summary"] = dg.MetadataValue.text(str(row["detail"]["summary"]))
            metadata[f"{prefix}checked_snapshot"] = str(pd.Timestamp(row["snapshot_date"]).date())
            for key in ("value", "threshold"):
                if not pd.isna(row[key]):
                    metadata[f"{prefix}{key}"] = float(row[key])
            metadata[f"{prefix}detail"] = dg.MetadataValue.json(row["detail"])
            metadata |= _failure_tables(prefix, row["detail"])
        # The stored severity is the deployment's for that market (a blocking check may be made a
        # warning or turned off): a failure is an error only where it was stored as blocking.
        judged = failed or list(rows)
        stops = [market for market in judged if rows[market]["severity"] == "blocking"]
        severity = dg.AssetCheckSeverity.ERROR if stops else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(passed=not failed, severity=severity, metadata=metadata)

    return _check


car_ingest_job = dg.define_asset_job(
    "car_ingest_job",
    selection=dg.AssetSelection.assets(car_snapshots),
    partitions_def=markets_partitions,
    description="Ingest a market's new CAR snapshots and run Data Checker 1 on them.",
)

ASSETS = [car_snapshots]
CHECKS = [_stored_check(name) for name in car_checks.CHECKS]
JOBS = [car_ingest_job]
