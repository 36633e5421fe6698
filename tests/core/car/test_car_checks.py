"""Data Checker 1: each check on small hand-made snapshots (pass and fail), storage and the gate."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from pydantic import ValidationError
from support.car_sample import month_ends, sample_car

from factory_assets.core import cell_status
from factory_assets.core.car import checks as car_checks
from factory_assets.core.car.check_store import (
    evaluate_market,
    gate_outcome,
    latest_results,
    stored_result,
)
from factory_assets.core.car.checks import CarCheckThresholds, CheckResult, market_data, run_checks
from factory_assets.core.car.ingest import Rejection, SnapshotInput, prepare_snapshot, write_snapshot
from factory_assets.core.cell_status import MARKET_WIDE
from factory_assets.core.contract import load_contract
from factory_assets.core.names import Table

MONTHS = month_ends(dt.date(2024, 1, 1), 6)
T = CarCheckThresholds()


def store(warehouse, frames: list[pd.DataFrame], market: str = "uk") -> None:
    """Validate and write each snapshot exactly as the ingest does."""
    contract = load_contract()
    for frame in frames:
        day = frame["snapshot_date"].iloc[0].date()
        item = SnapshotInput(market, day, f"{market}/car_{day}.parquet", lambda: "", lambda f=frame: f)
        write_snapshot(warehouse, market, prepare_snapshot(frame, contract, item), day, "test-run")


def same_people(months: int, customers: int = 200) -> list[pd.DataFrame]:
    """The same customers with the same values every month: every drift check passes."""
    return [sample_car(customers, day, seed=1) for day in MONTHS[:months]]


def result(warehouse, check: str, rejections: list[Rejection] | None = None) -> CheckResult:
    results = {r.check: r for r in run_checks(warehouse, "uk", rejections or [])}
    return results[check]


def test_stable_market_passes_every_check(warehouse):
    store(warehouse, same_people(4))

    results = run_checks(warehouse, "uk", [])

    assert [r.check for r in results] == list(car_checks.CHECKS)
    assert all(r.passed for r in results), [r.summary for r in results if not r.passed]
    values = {r.check: r.value for r in results}
    assert values == {
        "contract": 0.0,
        "volume": 1.0,
        "continuity": 0.0,
        "customer_overlap": 1.0,
        "category_explosion": 0.0,
        "null_rate": 0.0,
        "category_changes": 0.0,
        "psi": 0.0,
        "labels": 0.0,
        "extreme_psi": 0.0,
        "restatement": 0.0,
        "checks_ran": 0.0,
    }


def test_contract_fails_naming_each_rejected_file(warehouse):
    store(warehouse, same_people(1))
    rejection = Rejection("uk/car_2024-02-29.csv", "uk/car_2024-02-29.csv: column 'arpu' missing", MONTHS[1])

    check = result(warehouse, "contract", [rejection])

    assert not check.passed
    assert check.value == 1.0
    assert check.severity == "blocking"
    assert check.detail["rejected"][0]["file"] == "uk/car_2024-02-29.csv"
    assert "column 'arpu' missing" in check.summary


@pytest.mark.parametrize(("latest_rows", "passed"), [(40, False), (60, True)])
def test_volume_against_trailing_median(warehouse, latest_rows, passed):
    store(warehouse, [*same_people(3, customers=100), sample_car(latest_rows, MONTHS[3], seed=1)])

    check = result(warehouse, "volume")

    assert check.passed is passed
    assert check.value == pytest.approx(latest_rows / 100)
    assert check.detail["trailing_median"] == 100.0


def test_volume_of_a_first_snapshot_has_nothing_to_compare(warehouse):
    store(warehouse, same_people(1))
    check = result(warehouse, "volume")
    assert check.passed
    assert check.value is None
    assert "first snapshot" in check.summary


def test_continuity_fails_on_a_missing_month(warehouse):
    frames = same_people(4)
    store(warehouse, [frames[0], frames[1], frames[3]])

    check = result(warehouse, "continuity")

    assert not check.passed
    assert check.detail["missing_months"] == ["2024-03"]
    assert check.summary == "missing month(s) 2024-03"


def test_continuity_fails_on_two_snapshots_in_one_month(warehouse):
    store(warehouse, [*same_people(2), sample_car(200, dt.date(2024, 2, 15), seed=1)])

    check = result(warehouse, "continuity")

    assert not check.passed
    assert check.detail["months_with_several_snapshots"] == ["2024-02"]


@pytest.mark.parametrize(("first_id", "share", "passed"), [(0, 1.0, True), (30, 0.7, True), (50, 0.5, False)])
def test_customer_overlap_with_the_previous_snapshot(warehouse, first_id, share, passed):
    store(
        warehouse, [sample_car(100, MONTHS[0], seed=1), sample_car(100, MONTHS[1], seed=1, first_id=first_id)]
    )

    check = result(warehouse, "customer_overlap")

    assert check.passed is passed
    assert check.value == pytest.approx(share)
    assert check.detail["common_customers"] == 100 - first_id


def test_null_rate_jump_is_a_warning_naming_the_column(warehouse):
    latest = sample_car(100, MONTHS[1], seed=1)
    latest.loc[:29, "age"] = None
    store(warehouse, [sample_car(100, MONTHS[0], seed=1), latest])

    check = result(warehouse, "null_rate")

    assert not check.passed
    assert check.severity == "warning"
    assert check.detail["jumped"] == {"age": 0.3}
    assert check.detail["null_rates"]["age"] == {"previous": 0.0, "latest": 0.3}


def test_new_and_vanished_levels_warn_without_blocking(warehouse):
    latest = sample_car(100, MONTHS[1], seed=1)
    latest["region"] = latest["region"].replace({"west": "central"})
    store(warehouse, [sample_car(100, MONTHS[0], seed=1), latest])

    changes, explosion = result(warehouse, "category_changes"), result(warehouse, "category_explosion")

    assert not changes.passed
    assert changes.severity == "warning"
    assert changes.detail["new"] == {"region": ["central"]}
    assert changes.detail["vanished"] == {"region": ["west"]}
    assert explosion.passed, "one new level is no explosion"


def test_explosion_of_new_levels_blocks(warehouse):
    latest = sample_car(100, MONTHS[1], seed=1)
    latest["region"] = [f"r{i % 20}" for i in range(100)]
    store(warehouse, [sample_car(100, MONTHS[0], seed=1), latest])

    check = result(warehouse, "category_explosion")

    assert not check.passed
    assert check.severity == "blocking"
    assert check.detail["exploded"] == {"region": {"new_levels": 20, "previous_levels": 4}}
    assert check.value == pytest.approx(5.0)


def test_free_text_and_new_columns_are_not_category_checked(warehouse):
    previous, latest = sample_car(150, MONTHS[0], seed=1), sample_car(150, MONTHS[1], seed=1)
    previous["note"] = [f"text {i}" for i in range(150)]
    latest["note"] = [f"other {i}" for i in range(150)]
    latest["segment"] = ["a", "b"] * 75
    store(warehouse, [previous, latest])

    changes = result(warehouse, "category_changes")

    assert changes.passed, changes.summary
    assert "free text" in changes.detail["skipped"]["note"]
    assert "new column" in changes.detail["skipped"]["segment"]


def test_psi_flags_the_shifted_column_only(warehouse):
    latest = sample_car(300, MONTHS[1], seed=1)
    latest["arpu"] = latest["arpu"] + 40
    store(warehouse, [sample_car(300, MONTHS[0], seed=1), latest])

    check = result(warehouse, "psi")

    assert not check.passed
    assert check.severity == "warning"
    assert list(check.detail["drifted"]) == ["arpu"]
    assert check.detail["psi"]["region"] == 0.0
    assert check.detail["psi"]["sessions"] == 0.0
    assert check.value == check.detail["psi"]["arpu"] > T.max_psi


def test_extra_column_appearing_later_is_added_to_the_table(warehouse):
    latest = sample_car(50, MONTHS[1], seed=1)
    latest["loyalty_points"] = range(50)
    store(warehouse, [sample_car(50, MONTHS[0], seed=1), latest])

    rows = warehouse.query(
        "select snapshot_date, count(loyalty_points) as n from car.uk group by 1 order by 1"
    )

    assert rows["n"].tolist() == [0, 50]
    assert "loyalty_points" in market_data(warehouse, "uk", "customer_id").columns.numeric


def test_gate_fails_iff_a_blocking_check_fails():
    warn = CheckResult("psi", False, "arpu shifted")
    block = CheckResult("volume", False, "40 rows")
    ok = CheckResult("contract", True, "fine")

    assert gate_outcome("uk", [ok, warn]).status == "ok"
    assert gate_outcome("uk", [ok, warn]).message == "blocking checks passed; warnings: psi"
    failed = gate_outcome("uk", [ok, warn, block])
    assert failed.status == "failed"
    assert failed.message == "blocking checks failed: volume (40 rows)"


def test_evaluation_is_stored_and_the_gate_recorded(warehouse):
    store(warehouse, [*same_people(2), sample_car(50, MONTHS[2], seed=1)])

    checked, _, gate = evaluate_market(warehouse, "uk", [], "run-1")

    assert checked == MONTHS[2]
    stored = latest_results(warehouse, "uk")
    assert sorted(stored["check"]) == sorted(car_checks.CHECKS)
    assert set(stored["_run_id"]) == {"run-1"}
    volume = stored_result(warehouse, "uk", "volume")
    assert not volume["passed"]
    assert volume["severity"] == "blocking"
    assert volume["value"] == pytest.approx(0.25)
    assert volume["detail"]["summary"].startswith("50 rows on 2024-03-31")
    recorded = cell_status.latest(warehouse, "uk", MARKET_WIDE, "data_checker_1")
    assert recorded == gate
    assert recorded.status == "failed"
    assert "volume" in recorded.message
    assert "customer_overlap" in recorded.message


def test_re_evaluation_replaces_the_results_of_the_snapshot(warehouse):
    store(warehouse, same_people(2))
    evaluate_market(warehouse, "uk", [], "run-1")
    evaluate_market(warehouse, "uk", [], "run-2")

    rows = warehouse.query(f"select _run_id, count(*) as n from {Table.CAR_CHECK_RESULTS} group by 1")

    assert rows.to_dict("records") == [{"_run_id": "run-2", "n": len(car_checks.CHECKS)}]


def test_only_rejected_files_are_filed_under_their_snapshot(warehouse):
    rejection = Rejection("uk/car_2024-01-31.csv", "unreadable", MONTHS[0])

    checked, _, gate = evaluate_market(warehouse, "uk", [rejection], "run-1")

    assert checked == MONTHS[0]
    assert gate.status == "failed"
    assert "contract" in gate.message
    assert "volume (no snapshot of the market is held)" in gate.message
    detail = json.loads(
        warehouse.query(f"""select detail from {Table.CAR_CHECK_RESULTS} where "check" = 'contract'""").iloc[
            0, 0
        ]
    )
    assert detail["rejected"][0]["reason"] == "unreadable"


def test_nothing_to_check_raises(warehouse):
    with pytest.raises(ValueError, match="market 'uk': no snapshot held and none to check"):
        evaluate_market(warehouse, "uk", [], "run-1")


def test_reading_an_unchecked_market_raises(warehouse):
    store(warehouse, same_people(1))
    evaluate_market(warehouse, "uk", [], "run-1")
    with pytest.raises(LookupError, match="no stored Data Checker 1 result 'volume' for market 'de'"):
        stored_result(warehouse, "de", "volume")
    with pytest.raises(KeyError, match="unknown Data Checker 1 check 'typo'"):
        stored_result(warehouse, "uk", "typo")


def test_thresholds_are_typed_and_reject_unknown_names():
    assert CarCheckThresholds.model_validate({"min_volume_ratio": 0.4}).min_volume_ratio == 0.4
    with pytest.raises(ValidationError, match="min_volume"):
        CarCheckThresholds.model_validate({"min_volume": 0.4})
    with pytest.raises(ValidationError, match="min_customer_overlap"):
        CarCheckThresholds(min_customer_overlap=1.5)
    assert all(f.description for f in CarCheckThresholds.model_fields.values())
