"""Target derivation on tiny hand-made CARs, with exact expected labels."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from support.prep_frames import SHARED_PREP_TABLES, cell_rows, prep_tables

from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.targets import TargetError
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

JAN, FEB, MAR, APR = (dt.date(2024, m, 1) for m in (1, 2, 3, 4))

# customer -> {snapshot: (base_tier, tenure_months, bought)}; absent months are simply missing.
HISTORY = {
    "a": {JAN: ("basic", 5, 0), FEB: ("premium", 6, 1), MAR: ("premium", 7, 0)},
    "b": {JAN: ("basic", 5, 0), FEB: ("basic", 6, 0), MAR: ("standard", 7, 1)},
    "c": {JAN: ("standard", 5, 1), MAR: ("basic", 7, 0)},
    "d": {JAN: ("premium", 5, 0), FEB: ("premium", 6, 1)},
    "e": {JAN: ("basic", 1, 0), FEB: ("basic", 2, 0), MAR: ("premium", 3, 0)},
}


def write_car(warehouse: Warehouse, history: dict, market: str = "uk") -> None:
    """One CAR partition per snapshot; a `noise` column keeps cleaning busy."""
    days = sorted({day for months in history.values() for day in months})
    for day in days:
        rows = [
            {"customer_id": cid, "snapshot_date": day, "base_tier": tier, "tenure_months": tenure,
             "bought": bought, "noise": float(i)}
            for i, (cid, months) in enumerate(sorted(history.items()))
            if day in months
            for tier, tenure, bought in [months[day]]
        ]  # fmt: skip
        warehouse.replace_partition(f"car.{market}", pd.DataFrame(rows), {"snapshot_date": day}, "test")


def spec(target: dict, **extra: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "target": target, **extra})


def labels(warehouse: Warehouse, model_spec: ModelSpec) -> dict[tuple[str, dt.date], int | None]:
    build_training_frame(warehouse, "uk", model_spec, "run")
    frame = warehouse.query(
        "select customer_id, snapshot_date, target from prep.frames where market = 'uk' and model = ?",
        [model_spec.name],
    )
    return {
        (r.customer_id, pd.Timestamp(r.snapshot_date).date()): None if pd.isna(r.target) else int(r.target)
        for r in frame.itertuples()
    }


UPGRADE = {"kind": "movement", "product": "base_tier", "from": ["basic", "standard"], "to": ["premium"]}


def test_movement_target_labels_eligibility_and_unobservable_rows(warehouse: Warehouse) -> None:
    # given an upgrade target with a tenure filter; when the frame is built
    write_car(warehouse, HISTORY)
    population = [{"column": "tenure_months", "op": ">=", "value": 2}]
    got = labels(warehouse, spec(UPGRADE, population=population))
    # then: a moved (1), b stayed (0, 0), c left so Jan is excluded, d is premium (never eligible),
    # e is eligible only from tenure 2 and moved; March has no April snapshot: NULL, never 0
    assert got == {
        ("a", JAN): 1,
        ("b", JAN): 0,
        ("b", FEB): 0,
        ("b", MAR): None,
        ("c", MAR): None,
        ("e", FEB): 1,
    }


def test_churn_target_counts_absent_customers_as_positive(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    churn = {"kind": "movement", "product": "base_tier", "from": ["basic", "standard", "premium"],
             "to": ["churned"]}  # fmt: skip
    got = labels(warehouse, spec(churn))
    assert got == {
        ("a", JAN): 0, ("a", FEB): 0, ("a", MAR): None,
        ("b", JAN): 0, ("b", FEB): 0, ("b", MAR): None,
        ("c", JAN): 1, ("c", MAR): None,
        ("d", JAN): 0, ("d", FEB): 1,
        ("e", JAN): 0, ("e", FEB): 0, ("e", MAR): None,
    }  # fmt: skip


def test_churn_with_horizon_two(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    churn = {"kind": "movement", "product": "base_tier", "from": ["basic", "standard", "premium"],
             "to": ["churned"], "horizon": 2}  # fmt: skip
    got = labels(warehouse, spec(churn))
    # Jan looks at March: c is back (0), d is gone (1); Feb and Mar have no outcome yet
    assert {k: v for k, v in got.items() if k[1] == JAN} == {
        ("a", JAN): 0, ("b", JAN): 0, ("c", JAN): 0, ("d", JAN): 1, ("e", JAN): 0,
    }  # fmt: skip
    assert all(v is None for k, v in got.items() if k[1] != JAN)


def test_label_target_reads_the_column_horizon_snapshots_later(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    got = labels(warehouse, spec({"kind": "label", "column": "bought", "horizon": 1}))
    # a customer absent at t + 1 is unlabelled (excluded); the last snapshot is NULL
    assert got == {
        ("a", JAN): 1, ("a", FEB): 0, ("a", MAR): None,
        ("b", JAN): 0, ("b", FEB): 1, ("b", MAR): None,
        ("c", MAR): None,
        ("d", JAN): 1,
        ("e", JAN): 0, ("e", FEB): 0, ("e", MAR): None,
    }  # fmt: skip


def test_label_target_with_horizon_zero_is_the_same_row(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    got = labels(warehouse, spec({"kind": "label", "column": "bought", "horizon": 0}))
    expected = {(cid, day): row[2] for cid, months in HISTORY.items() for day, row in months.items()}
    assert got == expected


def test_a_missing_month_makes_the_month_before_unobservable(warehouse: Warehouse) -> None:
    # given Jan, Feb and Apr (no March snapshot at all)
    history = {"a": {JAN: ("basic", 5, 0), FEB: ("basic", 6, 0), APR: ("premium", 8, 0)},
               "b": {JAN: ("basic", 5, 0), FEB: ("premium", 6, 0), APR: ("premium", 8, 0)}}  # fmt: skip
    write_car(warehouse, history)
    got = labels(warehouse, spec(UPGRADE))
    # then Feb's outcome (March) is unknown: NULL, not the April value
    assert got == {("a", JAN): 0, ("b", JAN): 1, ("a", FEB): None}


def test_numeric_product_values_compare_as_numbers(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    got = labels(warehouse, spec({"kind": "movement", "product": "bought", "from": [0], "to": [1]}))
    assert got["a", JAN] == 1
    assert got["b", JAN] == 0
    assert got["b", FEB] == 1


def test_a_product_column_that_does_not_exist_names_the_cell_and_column(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    bad = spec({"kind": "movement", "product": "addon_golf", "from": [0], "to": [1]})
    with pytest.raises(TargetError, match=r"uk/m: target.product: column 'addon_golf' does not exist"):
        build_training_frame(warehouse, "uk", bad, "run")
    assert cell_rows(warehouse, "prep.frames", "uk", "m") == 0, "a failed cell writes nothing"
    assert not warehouse.table_exists("prep.history"), "nor the market's history: the spec fails first"


def test_a_horizon_beyond_the_data_fails_clearly(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    far = spec({**UPGRADE, "horizon": 3})
    with pytest.raises(TargetError, match=r"uk/m: horizon 3 month\(s\) is beyond the data"):
        build_training_frame(warehouse, "uk", far, "run")


def test_a_label_column_with_other_values_than_0_1_fails(warehouse: Warehouse) -> None:
    history = {k: {d: (t, n, 2 if k == "a" else b) for d, (t, n, b) in v.items()} for k, v in HISTORY.items()}
    write_car(warehouse, history)
    with pytest.raises(TargetError, match="label column 'bought' holds values other than 0/1"):
        build_training_frame(warehouse, "uk", spec({"kind": "label", "column": "bought"}), "run")


def test_a_from_value_that_is_no_number_for_a_numeric_product_fails(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    bad = spec({"kind": "movement", "product": "bought", "from": ["yes"], "to": [1]})
    with pytest.raises(TargetError, match=r"target\.from: value 'yes' is not a number"):
        build_training_frame(warehouse, "uk", bad, "run")


def test_a_number_ordered_against_a_text_column_fails_naming_the_spec_column_and_types(
    warehouse: Warehouse,
) -> None:
    # Issue 15: `base_tier >= 3` compared as text ('basic' >= '3') and kept everyone.
    write_car(warehouse, HISTORY)
    bad = spec(UPGRADE, population=[{"column": "base_tier", "op": ">=", "value": 3}])
    expected = (
        r"uk/m: population filter on 'base_tier': 'base_tier >= 3' compares a number \(int\) "
        r"with a text column \(VARCHAR\)"
    )
    with pytest.raises(TargetError, match=expected):
        build_training_frame(warehouse, "uk", bad, "run")


def test_a_missing_car_table_names_the_stage(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match=r"the CAR table car.fr does not exist"):
        build_training_frame(warehouse, "fr", spec(UPGRADE), "run")


def test_a_failed_rebuild_leaves_the_previous_frame_and_decisions(warehouse: Warehouse) -> None:
    write_car(warehouse, HISTORY)
    good = spec(UPGRADE)
    build_training_frame(warehouse, "uk", good, "first")
    far = spec({**UPGRADE, "horizon": 3})
    with pytest.raises(TargetError):
        build_training_frame(warehouse, "uk", far, "second")
    assert set(warehouse.query("select distinct _run_id from prep.frames")._run_id) == {"first"}
    assert set(warehouse.query("select distinct _run_id from prep.variable_decisions")._run_id) == {"first"}
    assert set(warehouse.query("select distinct _run_id from prep.frame_columns")._run_id) == {"first"}
    assert prep_tables(warehouse) <= SHARED_PREP_TABLES, "no staging table is left behind"
