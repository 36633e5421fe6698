"""Operator actions, launchable from the UI: release a held-back cell under override, withdraw a release.

Each is a job with run config (Launchpad: pick `release_override_job` or `release_withdrawal_job`,
fill in market, model, operator and reason) over `core.release.interventions`. Both leave a record
in the release ledger (`release.releases`: who, when, why, and for an override the check results it
overrode) and an observation on the cell's `released_scores` partition, so the asset's history in
the UI shows them next to the releases. `factory cli release-override` / `withdraw-release` do the
same from a shell.
"""

import dagster as dg
from pydantic import Field

from factory_assets.cellrun import STAGE_RESOURCES, stage_context
from factory_assets.core.names import Stage
from factory_assets.core.release.interventions import (
    InterventionOutcome,
    Request,
    override_release,
    withdraw_release,
)
from factory_assets.core.specs import ModelSpec
from factory_assets.partitions import Cell, markets_partitions
from factory_assets.specs_registry import DEPLOYMENT, SPECS


class _ActionConfig(dg.Config):
    market: str = Field(description="The market of the cell, e.g. 'uk'.")
    model: str = Field(description="The model of the cell, e.g. 'churn'.")
    operator: str = Field(description="Who takes the decision (recorded in the release ledger).")
    reason: str = Field(description="Why (recorded in the release ledger and shown in the status grid).")


class OverrideConfig(_ActionConfig):
    """Which held-back cell to release despite Data Checker 2, by whom and why."""

    attempt: str | None = Field(
        None,
        description="The held-back id you reviewed (status grid, release.releases); when given, the "
        "override is refused if the cell's scores have changed since.",
    )


class WithdrawalConfig(_ActionConfig):
    """Which cell's release in force to withdraw, by whom and why."""

    release_id: str | None = Field(
        None,
        description="The release you mean to withdraw; when given, the withdrawal is refused if another "
        "release is in force.",
    )


def cell_spec(context: dg.OpExecutionContext, market: str, model: str) -> ModelSpec:
    """The cell's spec (with the market's Data Checker 2 settings), after checking the cell exists."""
    if model not in SPECS:
        raise KeyError(f"model '{model}' has no spec in the deployment: known models {sorted(SPECS)}")
    if not context.instance.has_dynamic_partition(markets_partitions.name, market):
        raise KeyError(f"market '{market}' is not a partition of the factory (no CAR ingested for it)")
    return DEPLOYMENT.spec_for(SPECS[model], market)


def _observe(context: dg.OpExecutionContext, outcome: InterventionOutcome) -> None:
    record = outcome.record
    metadata: dict[str, object] = {
        "status": record.status,
        "operator": str(record.operator),
        "reason": record.reason,
        "ledger_id": record.release_id,
        "in_force": outcome.in_force.release_id if outcome.in_force else "nothing",
    }
    if outcome.overridden:
        metadata["overridden_checks"] = dg.MetadataValue.md(
            "\n".join(f"- **{r.check}**: {r.detail}" for r in outcome.overridden)
        )
    cell = Cell(record.market, record.model)
    context.log_event(
        dg.AssetObservation(asset_key=Stage.RELEASED_SCORES, partition=str(cell.key), metadata=metadata)
    )
    context.log.info(f"{cell}: {record.status} by {record.operator}: {record.reason}")


@dg.op(required_resource_keys=STAGE_RESOURCES)
def release_under_override(context: dg.OpExecutionContext, config: OverrideConfig) -> None:
    """Publish a held-back cell's scores despite Data Checker 2; the ledger keeps the overridden checks."""
    spec = cell_spec(context, config.market, config.model)
    request = Request(config.market, config.model, config.operator, config.reason)
    _observe(context, override_release(stage_context(context, config.market), spec, request, config.attempt))


@dg.op(required_resource_keys=STAGE_RESOURCES)
def withdraw_live_release(context: dg.OpExecutionContext, config: WithdrawalConfig) -> None:
    """Withdraw the cell's release in force; the previous release is served again."""
    cell_spec(context, config.market, config.model)
    request = Request(config.market, config.model, config.operator, config.reason)
    _observe(context, withdraw_release(stage_context(context, config.market), request, config.release_id))


@dg.job(description="Release a held-back cell under override, with who and why (recorded).")
def release_override_job() -> None:
    """Release a held-back cell's scores despite Data Checker 2 (see `release_under_override`)."""
    release_under_override()


@dg.job(description="Withdraw a cell's release in force; the API serves the previous one (recorded).")
def release_withdrawal_job() -> None:
    """Withdraw a cell's release in force (see `withdraw_live_release`)."""
    withdraw_live_release()


JOBS = [release_override_job, release_withdrawal_job]
