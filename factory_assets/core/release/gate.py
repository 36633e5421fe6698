"""Release one cell: gate its scores (Data Checker 2), then publish them or hold them back.

The gate runs here, in the release itself, for every cell: a Dagster check result may be stale, or
cover a whole range run, so the release never relies on it. A cell that fails keeps its last good
release in force and gets a `held_back` record naming every failed rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from factory_assets.core.clock import utc_now
from factory_assets.core.release import tables
from factory_assets.core.release.publish import publish
from factory_assets.core.release.score_checks import (
    RuleResult,
    ScoreCheckInputs,
    gate_reason,
    run_score_checks,
)
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


def gate_inputs(
    warehouse: Warehouse, store: ReleaseStore, market: str, model: str
) -> tuple[tables.CellScores, ScoreCheckInputs, ReleaseManifest | None]:
    """Load what Data Checker 2 needs for a cell: its scores, expectations and the last release."""
    facts = tables.load_gate_facts(warehouse, market, model)
    current = store.read_manifest(market, model)
    previous = store.load_reference(current) if current is not None else None
    inputs = ScoreCheckInputs(
        scores=facts.scores.frame,
        expected_rows=facts.expected_rows,
        expected_rate=facts.expected_rate,
        previous=previous,
        expected_rows_source=facts.expected_rows_source,
        expected_rate_source=facts.expected_rate_source,
    )
    return facts.scores, inputs, current


def evaluate_cell(
    warehouse: Warehouse, store: ReleaseStore, spec: ModelSpec, market: str, run_id: str
) -> tuple[tables.CellScores, list[RuleResult], ReleaseManifest | None]:
    """Run Data Checker 2 on a cell and store its results in `ops.score_check_results`."""
    with warehouse.session():
        scores, inputs, current = gate_inputs(warehouse, store, market, spec.name)
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
    outcome: ReleaseOutcome, scores: tables.CellScores, at: dt.datetime, path: str | None, sha: str | None
) -> tables.ReleaseRecord:
    return tables.ReleaseRecord(
        market=outcome.market,
        model=outcome.model,
        release_id=outcome.release_id,
        released_at=at,
        status="held_back" if outcome.held_back else "released",
        reason=outcome.reason,
        snapshot_date=scores.snapshot_date,
        model_version=scores.model_version,
        rows=outcome.rows,
        path=path,
        sha256=sha,
        serving_release_id=outcome.in_force.release_id if outcome.in_force else None,
    )


def release_cell(ctx: StageContext, spec: ModelSpec, market: str) -> ReleaseOutcome:
    """Gate the cell's scores; publish them if they pass, else record why they were held back."""
    with ctx.warehouse.session():  # short work: checks and file writes
        return _release(ctx.warehouse, ReleaseStore(ctx.releases_dir), spec, market, ctx.run_id)


def _release(
    warehouse: Warehouse, store: ReleaseStore, spec: ModelSpec, market: str, run_id: str
) -> ReleaseOutcome:
    model = spec.name
    scores, results, current = evaluate_cell(warehouse, store, spec, market, run_id)
    reason = gate_reason(results)
    now, rows = utc_now(), len(scores.frame)
    if reason is not None:
        held_id = attempt_id(market, model, scores)
        outcome = ReleaseOutcome(market, model, "held_back", held_id, reason, results, current, rows)
        tables.record_release(warehouse, _record(outcome, scores, now, None, None), run_id)
        return outcome
    manifest, created = publish(store, market, model, scores.frame, spec.output, now)
    status: ReleaseStatus = "released" if created else "unchanged"
    note = "published" if created else "same scores as the release in force: nothing new published"
    outcome = ReleaseOutcome(market, model, status, manifest.release_id, note, results, manifest, rows)
    released_at = dt.datetime.fromisoformat(manifest.released_at)
    path = str(store.cell_dir(market, model) / manifest.file)
    tables.record_release(warehouse, _record(outcome, scores, released_at, path, manifest.sha256), run_id)
    return outcome
