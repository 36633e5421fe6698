"""Override and withdrawal: each leaves a record in the release ledger, shows in the status grid and
changes what the API serves.

The cell is hand-built (`support.release_cell`): v1 released in June, July's drifted scores held back.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from support.api_keys import make_keys
from support.release_cell import JULY, JUNE, MARKET, MODEL, SPEC, V1, month, new_cell, probabilities

from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release import tables
from factory_assets.core.release.gate import release_cell
from factory_assets.core.release.interventions import (
    InterventionError,
    Request,
    override_release,
    withdraw_release,
)
from factory_assets.core.stage import StageContext
from factory_assets.core.status.grid import build_status
from factory_assets.core.warehouse import Warehouse
from serving.api import create_app

NOW = dt.datetime(2024, 7, 3, 9)
JULY_SCORES = probabilities(2, *V1["shape"]) * 2.2


@pytest.fixture
def held(paths: FactoryPaths, warehouse: Warehouse) -> tuple[StageContext, str, str]:
    """(context, June's release id, July's held-back attempt id)."""
    ctx = new_cell(paths, warehouse)
    june = month(ctx, JUNE, V1, probabilities(1, *V1["shape"]))
    july = month(ctx, JULY, V1, JULY_SCORES)
    assert june.status == "released"
    assert july.held_back
    return ctx, june.release_id, july.release_id


def api_client(ctx: StageContext) -> TestClient:
    """A client of the API over the cell's releases, sending a valid key."""
    keys = make_keys(ctx.releases_dir.parent / "deployment")
    return TestClient(create_app(ctx.releases_dir, keys.file), headers=keys.headers)


def served(client: TestClient) -> str | None:
    response = client.get(f"/scores/{MARKET}/{MODEL}/top", params={"n": 1})
    return response.json()["release_id"] if response.status_code == 200 else None


def grid_row(ctx: StageContext, max_age: int = 62):
    grid = build_status(ctx.warehouse, [MARKET], [MODEL], NOW, {MODEL: max_age})
    return grid.iloc[0]


def test_an_override_publishes_the_held_back_scores_and_records_who_why_and_what_it_overrode(held):
    ctx, june_id, attempt = held
    client = api_client(ctx)
    assert served(client) == june_id

    outcome = override_release(ctx, SPEC, Request(MARKET, MODEL, "ana", "drift confirmed by CRM"), attempt)

    assert served(client) == outcome.record.release_id != june_id, "the API serves the overridden release"
    entry = tables.ledger_entry(tables.ledger(ctx.warehouse, MARKET, MODEL), outcome.record.release_id)
    assert entry["status"] == "released_under_override"
    assert entry["operator"] == "ana"
    assert entry["reason"] == "drift confirmed by CRM"
    assert entry["released_at"] is not None
    overridden = {item["check"]: item for item in json.loads(entry["overridden_checks"])}
    assert "distribution_stable" in overridden
    assert not overridden["distribution_stable"]["passed"]
    row = grid_row(ctx)
    assert row["release_state"] == "released under override"
    assert row["health"] == "attention"
    assert "by ana" in row["problem"]
    assert "distribution_stable" in row["problem"]

    rerun = release_cell(ctx, SPEC, MARKET)
    assert rerun.status == "unchanged" and "override of ana" in rerun.reason, "not held back again"
    assert grid_row(ctx)["release_state"] == "released under override", "the record keeps its status"


def test_a_withdrawal_serves_the_previous_release_is_recorded_and_is_not_undone_by_the_next_run(held):
    ctx, june_id, attempt = held
    client = api_client(ctx)
    override = override_release(ctx, SPEC, Request(MARKET, MODEL, "ana", "drift confirmed"), attempt)
    july_id = override.record.release_id
    assert served(client) == july_id

    with pytest.raises(InterventionError, match="not 20240601"):
        withdraw_release(ctx, Request(MARKET, MODEL, "bo", "wrong"), release_id="20240601-000000000000")
    outcome = withdraw_release(ctx, Request(MARKET, MODEL, "bo", "campaign team saw odd ranks"), july_id)

    assert served(client) == june_id, "the API serves the previous release again"
    record = outcome.record
    assert (record.status, record.operator, record.withdrawn_release_id) == ("withdrawn", "bo", july_id)
    assert record.serving_release_id == june_id
    assert record.reason == "campaign team saw odd ranks"
    row = grid_row(ctx)
    assert row["release_state"] == "withdrawn"
    assert row["last_release_id"] == june_id
    assert f"withdrawn {july_id} by bo" in row["problem"]

    rerun = release_cell(ctx, SPEC, MARKET)
    assert rerun.held_back
    assert f"release {july_id}, withdrawn by bo" in rerun.reason
    assert served(client) == june_id
    assert grid_row(ctx)["release_state"] == "withdrawn"


def test_withdrawing_the_only_release_leaves_nothing_served(paths: FactoryPaths, warehouse: Warehouse):
    ctx = new_cell(paths, warehouse)
    june = month(ctx, JUNE, V1, probabilities(1, *V1["shape"]))
    client = api_client(ctx)
    assert served(client) == june.release_id

    outcome = withdraw_release(ctx, Request(MARKET, MODEL, "bo", "bad feed"))

    assert outcome.in_force is None
    assert outcome.record.serving_release_id is None
    assert client.get(f"/scores/{MARKET}/{MODEL}/top", params={"n": 1}).status_code == 404
    row = grid_row(ctx)
    assert row["release_state"] == "withdrawn"
    assert row["health"] == "failing"
    with pytest.raises(InterventionError, match="nothing to withdraw"):
        withdraw_release(ctx, Request(MARKET, MODEL, "bo", "again"))
