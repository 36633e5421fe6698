"""Release one cell: gate its scores (Data Checker 2), then publish them or hold them back.

The gate runs here, in the release itself, for every cell: a Dagster check result may be stale, or
cover a whole range run, so the release never relies on it. A cell that fails keeps its last good
release in force and gets a `held_back` record naming every failed rule.

The gate's reference depends on what changed since the last release: the same champion is compared
with its last release; a new champion with its own scores recorded at its decision
(`core.model.score_reference`). Scores an operator withdrew are not published again by a run (only
by an override), and scores already in force under an override stay in force as `unchanged`.
The scored snapshot's Data Checker 1 record is read here too, where the champion is known: an extreme
shift in a column the champion reads holds the cell back (`features_sound`), and the release record
names the snapshot's accepted restatement, if it is one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from factory_assets.core.car.admit import snapshot_restatement
from factory_assets.core.clock import utc_now
from factory_assets.core.model.score_reference import find_score_reference, load_score_reference
from factory_assets.core.model.store import ModelStore
from factory_assets.core.release import tables
from factory_assets.core.release.publish import prospective_release_id, publish
from factory_assets.core.release.score_checks import (
    RuleResult,
    ScoreCheckInputs,
    gate_reason,
    run_score_checks,
)
from factory_assets.core.release.snapshot_record import accepted_restatement, snapshot_shift
from factory_assets.core.release.store import ReleaseManifest, ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse

ReleaseStatus = Literal["released", "unchanged", "held_back"]


@dataclass(frozen=True)
class ReleaseOutcome:
    """What the release did for one cell and which release is in force afterwards."""

    market: str
    model: str
    status: ReleaseStatus
    release_id: str
    reason: str
    results: list[RuleResult]
    in_force: ReleaseManifest | None
    rows: int

    @property
    def held_back(self) -> bool:
        """True if the scores failed the gate and were not published."""
        return self.status == "held_back"


@dataclass(frozen=True)
class Reference:
    """What the comparison rules compare the scores with, and why that."""

    frame: pd.DataFrame | None
    source: str
    champion_change: str | None


def _short(version: str | None) -> str:
    return (version or "unknown")[:12]


def comparison_reference(
    warehouse: Warehouse,
    store: ReleaseStore,
    models: ModelStore,
    scores: tables.CellScores,
    current: ReleaseManifest | None,
) -> Reference:
    """The last release while its model still scores; else the new champion's own recorded scores."""
    if current is None:
        return Reference(None, "no earlier release", None)
    if current.model_version == scores.model_version:
        source = f"last release {current.release_id} (same model {_short(current.model_version)})"
        return Reference(store.load_reference(current), source, None)
    change = (
        f"champion changed since the last release {current.release_id} "
        f"({_short(current.model_version)} -> {_short(scores.model_version)})"
    )
    own = None
    if scores.model_version is not None:
        own = find_score_reference(warehouse, current.market, current.model, scores.model_version)
    if own is None:
        missing = f"none: no score reference recorded for {_short(scores.model_version)}"
        return Reference(None, missing, change)
    source = (
        f"new champion {_short(own.version)}'s own scores on {own.snapshot_date}, recorded at its "
        f"decision {own.decision_id[:8]} ({change})"
    )
    return Reference(load_score_reference(models, own), source, change)


def gate_inputs(
    warehouse: Warehouse, store: ReleaseStore, models: ModelStore, market: str, model: str
) -> tuple[tables.CellScores, ScoreCheckInputs, ReleaseManifest | None]:
    """Load what Data Checker 2 needs for a cell: its scores, expectations and its reference."""
    facts = tables.load_gate_facts(warehouse, market, model)
    current = store.read_manifest(market, model)
    reference = comparison_reference(warehouse, store, models, facts.scores, current)
    inputs = ScoreCheckInputs(
        scores=facts.scores.frame,
        expected_rows=facts.expected_rows,
        expected_rate=facts.expected_rate,
        previous=reference.frame,
        expected_rows_source=facts.expected_rows_source,
        expected_rate_source=facts.expected_rate_source,
        expected_rate_mean=facts.expected_rate_mean,
        previous_source=reference.source,
        champion_change=reference.champion_change,
        scored_snapshot=facts.scores.snapshot_date,
        latest_snapshot=facts.snapshots.latest,
        snapshots_behind=facts.snapshots.newer_than_scored,
        latest_snapshot_source=facts.snapshots.source,
        snapshot_shift=snapshot_shift(
            warehouse, market, model, facts.scores.snapshot_date, facts.scores.model_version
        ),
    )
    return facts.scores, inputs, current


def evaluate_cell(
    warehouse: Warehouse, store: ReleaseStore, spec: ModelSpec, market: str, run_id: str, models: ModelStore
) -> tuple[tables.CellScores, list[RuleResult], ReleaseManifest | None]:
    """Run Data Checker 2 on a cell and store its results in `ops.score_check_results`."""
    with warehouse.session():
        scores, inputs, current = gate_inputs(warehouse, store, models, market, spec.name)
        results = run_score_checks(inputs, spec.score_checks)
        frame = tables.check_results_frame(results, market, spec.name, scores, utc_now())
        tables.store_check_results(warehouse, frame, market, spec.name, run_id)
    return scores, results, current


def attempt_id(market: str, model: str, scores: tables.CellScores) -> str:
    """A stable id for a held-back attempt: the same failing scores always get the same id."""
    frame = scores.frame.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    digest = hashlib.sha256(f"{market}|{model}|".encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    prefix = scores.snapshot_date.strftime("%Y%m%d") if scores.snapshot_date else "nosnapshot"
    return f"{prefix}-{digest.hexdigest()[:12]}-held"


def _record(
    outcome: ReleaseOutcome,
    scores: tables.CellScores,
    at: dt.datetime,
    file: tuple[str | None, str | None],
    restatement: str | None,
) -> tables.ReleaseRecord:
    path, sha = file
    return tables.ReleaseRecord(
        market=outcome.market,
        model=outcome.model,
        release_id=outcome.release_id,
        released_at=at,
        status=tables.HELD_BACK if outcome.held_back else tables.RELEASED,
        reason=outcome.reason,
        snapshot_date=scores.snapshot_date,
        model_version=scores.model_version,
        rows=outcome.rows,
        path=path,
        sha256=sha,
        serving_release_id=outcome.in_force.release_id if outcome.in_force else None,
        restatement=restatement,
    )


def release_cell(ctx: StageContext, spec: ModelSpec, market: str) -> ReleaseOutcome:
    """Gate the cell's scores; publish them if they pass, else record why they were held back."""
    stores = ReleaseStore(ctx.releases_dir), ModelStore(ctx.models_dir)
    with ctx.warehouse.session():  # short work: checks and file writes
        return _release(ctx.warehouse, stores, spec, market, ctx.run_id)


def _not_publishable(
    entries: pd.DataFrame, release_id: str, current: ReleaseManifest | None, gate: str | None
) -> tuple[str | None, dict[str, object] | None]:
    """(why these scores must not be published, the override they stay in force under), one None.

    Withdrawn scores are not published again by a run; failing scores that are the release in force
    under an override stay in force; otherwise the gate's reason decides.
    """
    withdrawal = tables.withdrawal_of(entries, release_id)
    if withdrawal is not None:
        why = (
            f"these scores are release {release_id}, withdrawn by {withdrawal['operator']} at "
            f"{withdrawal['released_at']} ({withdrawal['reason']}): not published again (an override can)"
        )
        return why if gate is None else f"{why}; {gate}", None
    in_force = ledger_in_force(entries, current)
    if (
        gate is not None
        and in_force is not None
        and in_force["release_id"] == release_id
        and in_force["status"] == tables.RELEASED_UNDER_OVERRIDE
    ):
        return None, in_force
    return gate, None


def ledger_in_force(entries: pd.DataFrame, current: ReleaseManifest | None) -> dict[str, object] | None:
    """The ledger row of the release in force, or None."""
    return tables.ledger_entry(entries, current.release_id) if current is not None else None


def _same_snapshot_and_model(current: ReleaseManifest | None, scores: tables.CellScores) -> bool:
    return (
        current is not None
        and current.snapshot_date == str(scores.snapshot_date)
        and current.model_version == scores.model_version
    )


def _why_rereleased(
    warehouse: Warehouse, market: str, current: ReleaseManifest, scores: tables.CellScores
) -> str:
    """Why a cell publishes new scores for the snapshot and model of the release in force."""
    assert scores.snapshot_date is not None
    how = snapshot_restatement(warehouse, market, scores.snapshot_date) or "not restated"
    return (
        f"replaces {current.release_id} for the same snapshot {current.snapshot_date} and model "
        f"{current.model_version}: its inputs changed (snapshot restatement: {how})"
    )


def _release(
    warehouse: Warehouse, stores: tuple[ReleaseStore, ModelStore], spec: ModelSpec, market: str, run_id: str
) -> ReleaseOutcome:
    store, models = stores
    model = spec.name
    scores, results, current = evaluate_cell(warehouse, store, spec, market, run_id, models)
    entries = tables.ledger(warehouse, market, model)
    release_id = prospective_release_id(market, model, scores.frame, spec.output)
    reason, override = _not_publishable(entries, release_id, current, gate_reason(results))
    now, rows = utc_now(), len(scores.frame)
    restatement = accepted_restatement(warehouse, market, scores.snapshot_date)
    if reason is not None:
        held_id = attempt_id(market, model, scores)
        outcome = ReleaseOutcome(market, model, "held_back", held_id, reason, results, current, rows)
        tables.record_release(warehouse, _record(outcome, scores, now, (None, None), restatement), run_id)
        return outcome
    manifest, created = publish(store, market, model, scores.frame, spec.output, now)
    status: ReleaseStatus = "released" if created else "unchanged"
    note = "published" if created else "same scores as the release in force: nothing new published"
    if created and _same_snapshot_and_model(current, scores):
        note = f"{note}; {_why_rereleased(warehouse, market, current, scores)}"
    if override is not None:
        note = f"{note}; in force under the override of {override['operator']} ({override['reason']})"
    outcome = ReleaseOutcome(market, model, status, manifest.release_id, note, results, manifest, rows)
    existing = tables.ledger_entry(entries, manifest.release_id)
    if not created and existing is not None:  # touch the record: the latest attempt is this release
        tables.record_release(warehouse, tables.record_from_entry(existing), run_id)
        return outcome
    released_at = dt.datetime.fromisoformat(manifest.released_at)
    path = str(store.cell_dir(market, model) / manifest.file)
    record = _record(outcome, scores, released_at, (path, manifest.sha256), restatement)
    tables.record_release(warehouse, record, run_id)
    return outcome
