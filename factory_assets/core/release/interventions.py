"""An operator's way out: release held-back scores under override, or withdraw the release in force.

Both are recorded in the release ledger (`release.releases`) with who, when and why. An override
re-evaluates Data Checker 2 on the cell's current scores, refuses when they pass (then the normal
release is the way) or when they are not the held-back attempt the operator reviewed, publishes them
and keeps the failed rule results it overrode. A withdrawal puts the latest earlier release that is
still on disk and not withdrawn itself back in force (or none: the API then answers 404 for the
cell), and the next runs do not publish the withdrawn scores again.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import pandas as pd

from factory_assets.core.clock import utc_now
from factory_assets.core.model.store import ModelStore
from factory_assets.core.release import tables
from factory_assets.core.release.gate import attempt_id, evaluate_cell
from factory_assets.core.release.publish import publish
from factory_assets.core.release.score_checks import RuleResult
from factory_assets.core.release.snapshot_record import accepted_restatement
from factory_assets.core.release.store import ReleaseManifest, ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext


class InterventionError(ValueError):
    """An override or withdrawal that cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True)
class Request:
    """Who asks for an operator action on which cell, and why (both are required)."""

    market: str
    model: str
    operator: str
    reason: str

    def __post_init__(self) -> None:
        for name in ("operator", "reason"):
            if not getattr(self, name).strip():
                raise InterventionError(f"{self.market}/{self.model}: an operator action needs a {name}")


@dataclass(frozen=True)
class InterventionOutcome:
    """What an override or a withdrawal did: the ledger record it left and the release now in force."""

    record: tables.ReleaseRecord
    in_force: ReleaseManifest | None
    overridden: list[RuleResult]


def _checks_json(results: list[RuleResult]) -> str:
    return json.dumps([asdict(r) for r in results], default=str)


def override_release(
    ctx: StageContext, spec: ModelSpec, request: Request, attempt: str | None = None
) -> InterventionOutcome:
    """Publish the cell's held-back scores despite Data Checker 2, recording who, why and what failed.

    `attempt` (the held-back id the operator reviewed) guards against releasing scores that changed
    since: when given, it must be the id of the current scores.
    """
    store, models = ReleaseStore(ctx.releases_dir), ModelStore(ctx.models_dir)
    cell = f"{request.market}/{request.model}"
    with ctx.warehouse.session():
        scores, results, _ = evaluate_cell(ctx.warehouse, store, spec, request.market, ctx.run_id, models)
        failed = [r for r in results if not r.passed]
        current_attempt = attempt_id(request.market, request.model, scores)
        if not failed:
            raise InterventionError(f"{cell}: the scores pass Data Checker 2; release them normally")
        if attempt is not None and attempt != current_attempt:
            raise InterventionError(
                f"{cell}: the scores are attempt {current_attempt}, not the reviewed {attempt}: "
                "they changed since; review the new attempt"
            )
        manifest, created = publish(
            store, request.market, request.model, scores.frame, spec.output, utc_now()
        )
        if not created:
            raise InterventionError(f"{cell}: these scores are already in force ({manifest.release_id})")
        record = tables.ReleaseRecord(
            market=request.market,
            model=request.model,
            release_id=manifest.release_id,
            released_at=dt.datetime.fromisoformat(manifest.released_at),
            status=tables.RELEASED_UNDER_OVERRIDE,
            reason=request.reason,
            snapshot_date=scores.snapshot_date,
            model_version=scores.model_version,
            rows=manifest.rows,
            path=str(store.cell_dir(request.market, request.model) / manifest.file),
            sha256=manifest.sha256,
            serving_release_id=manifest.release_id,
            operator=request.operator,
            overridden_checks=_checks_json(failed),
            restatement=accepted_restatement(ctx.warehouse, request.market, scores.snapshot_date),
        )
        tables.record_release(ctx.warehouse, record, ctx.run_id)
    return InterventionOutcome(record, manifest, failed)


def _fallback(
    store: ReleaseStore, entries: pd.DataFrame, withdrawn: ReleaseManifest
) -> tuple[ReleaseManifest | None, list[str]]:
    """The latest earlier publication still on disk and not withdrawn, and the ids passed over."""
    published = entries[entries["status"].isin(tables.PUBLISHED)].sort_values("released_at", ascending=False)
    skipped: list[str] = []
    for release_id in dict.fromkeys(published["release_id"]):
        if release_id == withdrawn.release_id:
            continue
        if tables.withdrawal_of(entries, release_id) is not None:
            skipped.append(f"{release_id} (withdrawn)")
            continue
        manifest = store.archived_manifest(withdrawn.market, withdrawn.model, release_id)
        if manifest is None:
            skipped.append(f"{release_id} (no kept manifest)")
            continue
        return manifest, skipped
    return None, skipped


def withdraw_release(
    ctx: StageContext, request: Request, release_id: str | None = None
) -> InterventionOutcome:
    """Take the release in force out of service, put the previous one back, and record it.

    `release_id` (the release the operator means) guards against withdrawing a newer release
    published since: when given, it must be the release in force.
    """
    store = ReleaseStore(ctx.releases_dir)
    cell = f"{request.market}/{request.model}"
    with ctx.warehouse.session():
        current = store.read_manifest(request.market, request.model)
        if current is None:
            raise InterventionError(f"{cell}: no release is in force, so there is nothing to withdraw")
        if release_id is not None and release_id != current.release_id:
            raise InterventionError(f"{cell}: the release in force is {current.release_id}, not {release_id}")
        entries = tables.ledger(ctx.warehouse, request.market, request.model)
        previous, skipped = _fallback(store, entries, current)
        if previous is None:
            store.retire_manifest(request.market, request.model)
        else:
            store.swap_manifest(previous)
        now = utc_now()
        note = f"; passed over {', '.join(skipped)}" if skipped else ""
        record = tables.ReleaseRecord(
            market=request.market,
            model=request.model,
            release_id=f"{current.release_id}-withdrawn-{now:%Y%m%dT%H%M%S}",
            released_at=now,
            status=tables.WITHDRAWN,
            reason=request.reason + note,
            snapshot_date=dt.date.fromisoformat(current.snapshot_date) if current.snapshot_date else None,
            model_version=current.model_version,
            rows=current.rows,
            path=str(store.cell_dir(request.market, request.model) / current.file),
            sha256=current.sha256,
            serving_release_id=previous.release_id if previous else None,
            operator=request.operator,
            withdrawn_release_id=current.release_id,
        )
        tables.record_release(ctx.warehouse, record, ctx.run_id)
    return InterventionOutcome(record, previous, [])
