"""Data Checker 1 on the columns real exports carry: all-null, constant, odd types, labels.

Every check must return a verdict with a reason, never raise; label columns (role 'label') are
checked as labels (0/1 where known, NULL allowed) and never get a feature's null-rate or PSI warning.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.car_sample import month_ends, sample_car

from factory_assets.core.car import checks as car_checks
from factory_assets.core.car.check_store import evaluate_market, stored_result
from factory_assets.core.car.checks import CheckResult, run_checks
from factory_assets.core.car.ingest import SnapshotInput, prepare_snapshot, write_snapshot
from factory_assets.core.contract import CarContract, ColumnRule, load_contract
from factory_assets.core.warehouse import Warehouse

MONTHS = month_ends(dt.date(2024, 1, 1), 3)
FIRST, PREVIOUS, LATEST = MONTHS
N = 200


def contract_with_label() -> CarContract:
    """The default contract plus a label column `bought` (0/1, NULL while unknown)."""
    contract = load_contract()
    label = ColumnRule(type="flag", role="label", nullable=True)
    return contract.model_copy(update={"columns": {**contract.columns, "bought": label}})


def store(warehouse: Warehouse, frames: list[pd.DataFrame], contract: CarContract) -> None:
    """Validate and write each snapshot exactly as the ingest does."""
    for frame in frames:
        day = frame["snapshot_date"].iloc[0].date()
        item = SnapshotInput("uk", day, f"uk/car_{day}.parquet", lambda: "", lambda f=frame: f)
        write_snapshot(warehouse, "uk", prepare_snapshot(frame, contract, item), day, "test-run")


def awkward_snapshots(seed: int = 11) -> list[pd.DataFrame]:
    """Three snapshots of the same customers with the awkward columns the module docstring lists."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, day in enumerate(MONTHS):
        frame = sample_car(N, day, seed=1)
        values = pd.array(rng.normal(50, 10, N), dtype="Float64")
        nulls = pd.array([None] * N, dtype="Float64")
        frame["gap_previous"] = nulls if day == PREVIOUS else values  # null throughout the reference
        frame["gap_latest"] = nulls if day == LATEST else values  # null throughout the current
        frame["flat"] = 7.0  # constant everywhere
        frame["tags"] = [[k, i % 3] for i in range(N)]  # a list type: neither numeric nor text
        frame["joined"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(N), unit="D")
        labels = rng.integers(0, 2, N)
        frame["bought"] = pd.array([None] * N if day == LATEST else labels, dtype="Int64")
        frames.append(frame)
    return frames


@pytest.fixture
def awkward(warehouse: Warehouse) -> Warehouse:
    store(warehouse, awkward_snapshots(), contract_with_label())
    return warehouse


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def test_every_check_gives_a_verdict_on_awkward_columns(awkward: Warehouse) -> None:
    # when Data Checker 1 runs with the contract's label columns
    results = run_checks(awkward, "uk", [], label_columns=contract_with_label().label_columns)

    # then every check answers, with a reason
    assert [r.check for r in results] == list(car_checks.CHECKS)
    assert all(isinstance(r.passed, bool) and r.summary for r in results)
    checks = by_name(results)
    psi, null_rate = checks["psi"], checks["null_rate"]
    assert "null throughout the previous snapshot" in psi.detail["skipped"]["gap_previous"]
    assert "gap_previous" not in psi.detail["psi"], "no reference distribution: not compared"
    assert list(psi.detail["drifted"]) == ["gap_latest"], "a column that went null is a shift"
    assert psi.detail["psi"]["flat"] == 0.0
    assert "tags" not in psi.detail["psi"]
    assert null_rate.detail["jumped"] == {"gap_latest": 1.0}
    assert null_rate.detail["null_rates"]["tags"] == {"previous": 0.0, "latest": 0.0}
    assert checks["category_explosion"].passed
    assert checks["volume"].passed


def test_a_label_column_is_checked_as_a_label_not_as_a_feature(awkward: Warehouse) -> None:
    results = by_name(run_checks(awkward, "uk", [], label_columns=frozenset({"bought"})))

    labels = results["labels"]
    assert labels.passed and labels.severity == "warning", labels.summary
    facts = labels.detail["labels"]["bought"]
    assert facts["known_up_to"] == str(PREVIOUS)
    assert facts["known_share_latest"] == 0.0
    assert facts["known_share"] == {str(FIRST): 1.0, str(PREVIOUS): 1.0, str(LATEST): 0.0}
    assert f"known up to {PREVIOUS}" in labels.summary
    assert "bought" not in results["null_rate"].detail["null_rates"]
    assert "bought" not in results["null_rate"].detail["jumped"]
    assert "bought" not in results["psi"].detail["psi"]
    assert "bought" not in results["psi"].detail["drifted"]


def test_the_same_column_undeclared_is_a_feature_and_warns(awkward: Warehouse) -> None:
    results = by_name(run_checks(awkward, "uk", []))

    assert results["null_rate"].detail["jumped"]["bought"] == 1.0
    assert "bought" in results["psi"].detail["drifted"]
    assert results["labels"].passed
    assert results["labels"].summary == "no label column in the contract"


def test_label_values_other_than_0_1_warn_with_examples(warehouse: Warehouse) -> None:
    frames = awkward_snapshots()
    frames[0]["bought"] = pd.array([2, 0, 1, -1] * (N // 4), dtype="Int64")
    store(warehouse, frames, load_contract())  # undeclared at ingest, declared at the check

    declared = frozenset({"bought", "renewed"})
    labels = by_name(run_checks(warehouse, "uk", [], label_columns=declared))["labels"]

    assert not labels.passed
    assert labels.severity == "warning"
    assert labels.value == float(N // 2)
    assert labels.detail["labels"]["bought"]["non_label_values"] == ["-1", "2"]
    assert "renewed: declared as a label but not in car.uk" in labels.summary


def test_the_evaluation_with_awkward_columns_is_stored(awkward: Warehouse) -> None:
    checked, _, gate = evaluate_market(
        awkward, "uk", [], "run-1", label_columns=contract_with_label().label_columns
    )

    assert checked == LATEST and gate.status == "ok", gate.message
    labels = stored_result(awkward, "uk", "labels")["detail"]["labels"]
    assert labels["bought"]["known_up_to"] == str(PREVIOUS)
    assert stored_result(awkward, "uk", "psi")["detail"]["skipped"]["gap_previous"]


def test_a_column_null_throughout_the_first_snapshot_takes_the_type_of_later_values(
    warehouse: Warehouse,
) -> None:
    # given a column that a first Parquet export carries as all-null (DuckDB type "NULL")
    frames = [sample_car(N, day, seed=1) for day in MONTHS]
    frames[0]["late"] = None
    for frame in frames[1:]:
        frame["late"] = np.linspace(0, 1, N)

    store(warehouse, frames, load_contract())

    # then the later snapshots are ingested (not rejected) and the column is numeric and checked
    stored = warehouse.query("select snapshot_date, count(late) as n from car.uk group by 1 order by 1")
    assert stored["n"].tolist() == [0, N, N]
    psi = by_name(run_checks(warehouse, "uk", []))["psi"]
    assert psi.detail["psi"]["late"] == 0.0
