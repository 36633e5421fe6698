"""Data Checker 2 knows what changed: the July/August scenario of issue 20, on a hand-built cell.

June: champion v1 is released. July: drift lands, the challenger is not better, v1 is kept and its
scores move a lot: held back against v1's June release. August: challenger v2 replaces v1; its
scores differ from v1's June release by design, but match v2's own scores recorded at its decision
(the July population): released. September: the feed breaks (scores shifted) under the unchanged
v2: held back. The market's CAR, the registry rows, the score reference and the scores are written
here as the upstream stages leave them, so each step is one `release_cell`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from support.release_cell import (
    AUGUST,
    JULY,
    JUNE,
    MARKET,
    MODEL,
    SEPTEMBER,
    SPEC,
    V1,
    V2,
    N,
    decide,
    ingest,
    month,
    new_cell,
    probabilities,
    record_own_reference,
    score,
)

from factory_assets.core.model import registry
from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.gate import release_cell
from factory_assets.core.release.interventions import InterventionError, Request, override_release
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse


@pytest.fixture
def cell(paths: FactoryPaths, warehouse: Warehouse) -> StageContext:
    return new_cell(paths, warehouse)


def results(outcome) -> dict:
    return {r.check: r for r in outcome.results}


def released_in_june(ctx: StageContext) -> str:
    june = month(ctx, JUNE, V1, probabilities(1, *V1["shape"]))
    assert june.status == "released", june.reason
    return june.release_id


def test_july_drift_with_the_champion_kept_is_held_against_its_last_release(cell):
    june_id = released_in_june(cell)
    july = month(cell, JULY, V1, probabilities(2, *V1["shape"]) * 2.2)  # same model, population moved

    assert july.held_back
    assert july.in_force.release_id == june_id
    stability = results(july)["distribution_stable"]
    assert not stability.passed
    assert stability.value > SPEC.score_checks.max_psi
    assert stability.reference.startswith(f"last release {june_id}")
    assert "same model" in stability.reference
    assert results(july)["ranks_stable"].reference.startswith("last release")


def test_august_a_new_champion_is_released_because_its_scores_match_its_own_reference(cell):
    june_id = released_in_june(cell)
    month(cell, JULY, V1, probabilities(2, *V1["shape"]) * 2.2)
    decide(cell.warehouse, "d2", V2, dt.datetime(2024, 8, 2))
    record_own_reference(cell, V2, JULY, probabilities(3, *V2["shape"]))

    august = month(cell, AUGUST, V2, probabilities(4, *V2["shape"]))

    assert august.status == "released", august.reason
    checks = results(august)
    assert checks["distribution_stable"].passed
    assert checks["distribution_stable"].value < 0.05
    assert "own scores on 2024-07-01" in checks["distribution_stable"].reference
    assert f"champion changed since the last release {june_id}" in checks["distribution_stable"].reference
    assert checks["ranks_stable"].passed
    assert checks["ranks_stable"].value is None
    assert "champion changed" in checks["ranks_stable"].detail
    assert checks["mean_near_expected"].reference.startswith("test_base_rate of v2")


def test_august_without_the_new_champions_own_reference_compares_nothing_and_holds(cell):
    released_in_june(cell)
    decide(cell.warehouse, "d2", V2, dt.datetime(2024, 8, 2))

    august = month(cell, AUGUST, V2, probabilities(4, *V2["shape"]))

    assert august.held_back
    assert "no score reference of the new champion" in results(august)["distribution_stable"].detail


def test_a_broken_feed_under_an_unchanged_champion_is_still_held(cell):
    released_in_june(cell)
    decide(cell.warehouse, "d2", V2, dt.datetime(2024, 8, 2))
    record_own_reference(cell, V2, JULY, probabilities(3, *V2["shape"]))
    august = month(cell, AUGUST, V2, probabilities(4, *V2["shape"]))
    assert august.status == "released", august.reason

    broken = np.clip(probabilities(5, *V2["shape"]) + 0.25, 0, 1)  # a feed fault lifts every score
    september = month(cell, SEPTEMBER, V2, broken)

    assert september.held_back
    assert september.in_force.release_id == august.release_id
    stability = results(september)["distribution_stable"]
    assert not stability.passed
    assert stability.reference.startswith(f"last release {august.release_id}")


def test_a_broken_feed_under_a_new_champion_is_held_against_its_own_reference(cell):
    released_in_june(cell)
    decide(cell.warehouse, "d2", V2, dt.datetime(2024, 8, 2))
    record_own_reference(cell, V2, JULY, probabilities(3, *V2["shape"]))

    august = month(cell, AUGUST, V2, np.clip(probabilities(4, *V2["shape"]) + 0.25, 0, 1))

    assert august.held_back
    assert "own scores on 2024-07-01" in results(august)["distribution_stable"].detail


def test_the_expected_rate_is_the_recent_realised_rate_where_labels_arrived(cell):
    released_in_june(cell)
    realised = {"market": MARKET, "model": MODEL, "model_version": V1["version"], "snapshot_date": JUNE}
    registry.write(cell.warehouse, Table.REALISED_PERFORMANCE, {**realised, "n": N, "positives": N // 2}, "t")

    july = month(cell, JULY, V1, probabilities(2, *V1["shape"]))

    mean = results(july)["mean_near_expected"]
    assert not mean.passed, "scores near the test rate 0.1 are far from the realised 0.5"
    assert mean.reference == f"realised rate at {JUNE}, {N} customers with known outcome"


def test_a_snapshot_older_than_the_markets_latest_is_not_released(cell):
    released_in_june(cell)
    ingest(cell.warehouse, AUGUST)  # the market moved on, the cell scored July
    score(cell.warehouse, JULY, V1, probabilities(1, *V1["shape"]) * 1.01)

    july = release_cell(cell, SPEC, MARKET)
    allowed = release_cell(
        cell,
        SPEC.model_copy(
            update={"score_checks": SPEC.score_checks.model_copy(update={"max_snapshots_behind": 1})}
        ),
        MARKET,
    )

    assert july.held_back
    assert not results(july)["snapshot_current"].passed
    assert "latest ingested 2024-08-01" in results(july)["snapshot_current"].detail
    assert allowed.status == "released", allowed.reason


def test_an_override_is_refused_when_the_scores_pass_or_changed_since_review(cell):
    released_in_june(cell)
    score(cell.warehouse, JUNE, V1, probabilities(1, *V1["shape"]) * 0.999)
    request = Request(MARKET, MODEL, "ana", "reviewed")
    with pytest.raises(InterventionError, match="pass Data Checker 2"):
        override_release(cell, SPEC, request)
    july = month(cell, JULY, V1, probabilities(2, *V1["shape"]) * 2.2)
    with pytest.raises(InterventionError, match="changed since"):
        override_release(cell, SPEC, request, attempt="20240701-000000000000-held")
    with pytest.raises(InterventionError, match="needs a reason"):
        Request(MARKET, MODEL, "ana", " ")
    assert ReleaseStore(cell.releases_dir).read_manifest(MARKET, MODEL).release_id == july.in_force.release_id
