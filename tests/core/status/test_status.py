"""The factory status grid for a small hand-built factory: content, ordering, text and HTML views."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from factory_assets.core import cell_status
from factory_assets.core.cell_status import MARKET_WIDE, StageOutcome
from factory_assets.core.names import Table
from factory_assets.core.release.tables import ReleaseRecord, record_release
from factory_assets.core.status.grid import CELL_STAGES, build_status, format_status_table, store_status
from factory_assets.core.status.html import render_status_html
from factory_assets.core.warehouse import Warehouse

NOW = dt.datetime(2026, 11, 1, 12, 0)
SNAPSHOT = dt.date(2026, 10, 31)


def write(warehouse: Warehouse, table: str, rows: list[dict], *keys: str) -> None:
    """Rows written partition by partition, as the owning stage writes them."""
    frame = pd.DataFrame(rows)
    for values, part in frame.groupby(list(keys), sort=False):
        warehouse.replace_partition(table, part, dict(zip(keys, values, strict=True)), "test")


def car_checks(market: str, snapshot: dt.date, failures: dict[str, str]) -> list[dict]:
    names = ["contract", "volume", "null_rates", "continuity"]
    return [
        {
            "market": market,
            "snapshot_date": snapshot,
            "check": name,
            "severity": "blocking" if name in ("contract", "continuity") else "warning",
            "passed": name not in failures,
            "value": 0.0,
            "threshold": 0.0,
            "detail": failures.get(name, ""),
        }
        for name in names
    ]


def release(model: str, release_id: str, status: str, at: dt.datetime, reason: str = "") -> ReleaseRecord:
    return ReleaseRecord(
        "uk",
        model,
        release_id,
        at,
        status,
        reason,
        SNAPSHOT,
        "v1",
        100,
        None if status == "held_back" else f"/r/{release_id}.parquet",
        None,
        "r1",
    )


@pytest.fixture
def factory(warehouse: Warehouse) -> Warehouse:
    """uk: addon_kids healthy; churn held back on its last attempt. de: Data Checker 1 failed."""
    for market, status in [("uk", "ok"), ("de", "failed")]:
        cell_status.record(warehouse, StageOutcome(market, MARKET_WIDE, "data_checker_1", status, "x"), "t")
    for model in ["addon_kids", "churn"]:
        for stage in CELL_STAGES:
            failed = model == "churn" and stage == "released_scores"
            outcome = StageOutcome(
                "uk", model, stage, "failed" if failed else "ok", "held back: nan" if failed else ""
            )
            cell_status.record(warehouse, outcome, "t")
    checks = [
        *car_checks("uk", dt.date(2026, 9, 30), {"contract": "bad types"}),
        *car_checks("uk", SNAPSHOT, {}),
        *car_checks("de", SNAPSHOT, {"contract": "missing column arpu", "volume": "-40%"}),
    ]
    write(warehouse, "ops.car_check_results", checks, "market", "snapshot_date")
    write(
        warehouse,
        Table.MODELS,
        [
            {
                "model_version": "v1",
                "trained_at": dt.datetime(2026, 9, 1, 12),
                "metrics": json.dumps({"auc": 0.78}),
            },
            {
                "model_version": "v2",
                "trained_at": dt.datetime(2026, 10, 25, 12),
                "metrics": json.dumps({"auc": 0.7}),
            },
        ],
        "model_version",
    )
    write(
        warehouse,
        Table.DECISIONS,
        [
            {
                "decision_id": "d1",
                "market": "uk",
                "model": "churn",
                "decided_at": dt.datetime(2026, 9, 2),
                "outcome": "promote",
                "reason": "no champion",
                "live_version": "v1",
            },
            {
                "decision_id": "d2",
                "market": "uk",
                "model": "churn",
                "decided_at": dt.datetime(2026, 10, 30),
                "outcome": "keep",
                "reason": "uplift 0.001 < 0.005 <script>",
                "live_version": "v1",
            },
            {
                "decision_id": "d3",
                "market": "uk",
                "model": "addon_kids",
                "decided_at": dt.datetime(2026, 10, 26),
                "outcome": "promote",
                "reason": "no champion",
                "live_version": "v2",
            },
        ],
        "decision_id",
    )
    write(
        warehouse,
        "factory.drift",
        [{"market": "uk", "model": "churn", "drift_share": 0.3}],
        "market",
        "model",
    )
    write(
        warehouse,
        "factory.drift",
        [{"market": "uk", "model": "churn", "drift_share": 0.12}],
        "market",
        "model",
    )
    record_release(warehouse, release("churn", "r1", "released", dt.datetime(2026, 10, 1, 6)), "t")
    record_release(warehouse, release("churn", "r2-held", "held_back", NOW, "valid_values: 3 NaN"), "t")
    record_release(warehouse, release("addon_kids", "k1", "released", dt.datetime(2026, 10, 31, 6)), "t")
    write(
        warehouse,
        "ops.score_check_results",
        [
            {"market": "uk", "model": "churn", "check": "valid_values", "passed": False},
            {"market": "uk", "model": "churn", "check": "unique", "passed": True},
        ],
        "market",
        "model",
    )
    return warehouse


def test_the_grid_gathers_every_stage_fact_per_cell(factory):
    grid = build_status(factory, ["uk", "de"], ["churn", "addon_kids"], NOW)
    cells = grid.set_index(["market", "model"])

    assert len(grid) == 4
    churn = cells.loc[("uk", "churn")]
    assert churn["dc1"] == "pass 2026-10-31", "the latest snapshot's result, not an older failure"
    assert churn["champion_version"] == "v1"
    assert churn["champion_age_days"] == 61
    assert churn["test_auc"] == pytest.approx(0.78)
    assert churn["last_decision"] == "keep"
    assert churn["last_decision_reason"].startswith("uplift 0.001")
    assert churn["drift_share"] == pytest.approx(0.12), "the latest drift record"
    assert churn["last_release_id"] == "r1" and pd.Timestamp(churn["last_release_at"]) == pd.Timestamp(
        2026, 10, 1, 6
    )
    assert bool(churn["held_back"])
    assert churn["held_back_reason"] == "valid_values: 3 NaN"
    assert churn["score_checks"] == "valid_values"
    assert churn["released_scores"] == "failed"
    assert churn["scores"] == "ok"
    assert churn["health"] == "failing"
    assert churn["problem"] == "held back: valid_values: 3 NaN (still serving r1)"

    kids = cells.loc[("uk", "addon_kids")]
    assert kids["health"] == "ok"
    assert kids["problem"] == ""
    assert not kids["held_back"]
    assert (
        kids["champion_version"] == "v2"
        and kids["champion_age_days"] == 7
        and kids["last_release_id"] == "k1"
    )

    de = cells.loc[("de", "churn")]
    assert de["dc1"] == "FAIL 2026-10-31: contract"
    assert de["health"] == "failing"
    assert de["problem"] == "Data Checker 1 failed: contract"
    assert de["data_checker_1"] == "failed"
    assert de["training_frame"] == ""

    assert list(grid["health"]) == ["failing", "failing", "failing", "ok"], "worst first"


def test_an_empty_factory_shows_cells_not_run_yet(warehouse):
    grid = build_status(warehouse, ["uk"], ["churn"], NOW)
    assert len(grid) == 1
    row = grid.iloc[0]
    assert row["health"] == "attention"
    assert row["problem"].startswith("not run yet: training_frame")
    assert not row["held_back"]
    assert row["dc1"] == ""
    assert "not run yet" in format_status_table(grid)


def test_the_text_table_for_the_cli(factory):
    grid = build_status(factory, ["uk", "de"], ["churn", "addon_kids"], NOW)
    text = format_status_table(grid)
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["market", "model", "health", "DC1", "stages", "ok"]
    assert len(lines) == 2 + len(grid)
    assert "0.780" in text
    assert "held back: valid_values" in text
    markdown = format_status_table(grid, tablefmt="github")
    assert markdown.startswith("| market")
    assert "|--" in markdown.replace(" ", "").replace(":", "")
    assert format_status_table(grid.iloc[0:0]).startswith("(no cells")


def test_the_html_page_makes_failing_cells_stand_out_and_escapes_text(factory):
    grid = build_status(factory, ["uk", "de"], ["churn", "addon_kids"], NOW)
    page = render_status_html(grid, NOW)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<tr class="failing" ') == 3
    assert page.count('<tr class="ok" ') == 1
    assert "3 failing" in page
    assert "1 ok" in page
    assert page.count("<script>") == 1 and "&lt;script&gt;" in page, "only the page's own filter script"
    assert 'data-health="failing" data-market=' in page
    assert 'id="filter-health"' in page


def test_the_grid_is_stored_per_market_and_read_back_as_one_table(factory, warehouses):
    grid = build_status(factory, ["uk", "de"], ["churn", "addon_kids"], NOW)
    assert store_status(warehouses, grid, "run-1") == 4
    assert warehouses.markets() == ["de", "uk"], "each market's rows in its own file"
    assert store_status(warehouses, grid.head(2), "run-2") == 2
    stored = warehouses.union().query("select * from ops.factory_status")
    assert len(stored) == 2, "a market left out of the grid loses its stored rows"
    assert set(stored["_run_id"]) == {"run-2"}
    store_status(warehouses, grid, "run-3")
    reread = warehouses.union().query("select * from ops.factory_status order by market desc, model desc")
    assert format_status_table(reread) == format_status_table(grid), "the CLI prints the stored grid as built"


def test_an_empty_grid_still_renders_a_page(warehouse):
    grid = build_status(warehouse, [], ["churn"], NOW)
    assert grid.empty
    assert "No cells yet" in render_status_html(grid, NOW)


@pytest.mark.parametrize("limit_days, stale", [(1, True), (2, False)])
def test_a_live_release_older_than_the_specs_limit_is_failing_stale_since_the_day_it_crossed_it(
    factory, limit_days, stale
):
    grid = build_status(factory, ["uk"], ["churn", "addon_kids"], NOW, {"addon_kids": limit_days})
    kids = grid.set_index("model").loc["addon_kids"]  # released 2026-10-31 06:00, now 2026-11-01 12:00

    if stale:
        assert kids["health"] == "failing"
        assert kids["problem"].startswith("stale since 2026-11-01: live release k1 of 2026-10-31")
    else:
        assert kids["health"] == "ok"
        assert kids["problem"] == ""


def test_staleness_is_shown_whatever_the_reason_and_a_cell_never_released_is_not_stale(factory):
    grid = build_status(factory, ["uk", "de"], ["churn", "addon_kids"], NOW + dt.timedelta(days=62))
    cells = grid.set_index(["market", "model"])

    churn = cells.loc[("uk", "churn")]  # held back and its release r1 of 2026-10-01 is > 62 days old
    assert (
        churn["problem"].startswith("stale since 2026-12-02")
        and "held back: valid_values" in churn["problem"]
    )
    assert "stale" not in cells.loc[("de", "churn")]["problem"], "nothing released: nothing to be stale"
