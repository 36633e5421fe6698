"""A market's history features: computed once, extended by column, refreshed from the changed month on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.prep_frames import SHARED_PREP_TABLES, cell_frame, prep_tables

from factory_assets.core.prep import history as history_module
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.history import build_market_history, build_row_history
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.prep.sql import PrepError
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

MONTHS = [dt.date(2024, m, 1) for m in range(1, 9)]
BASE = {"columns": ["v"], "lags": [1], "windows": [3], "aggregations": ["mean"], "recency": ["r"]}


def spec(name: str, **history: object) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": name,
            "target": {"kind": "label", "column": "lab", "horizon": 1},
            "features": {"exclude": ["lab"], "history": {**BASE, **history}},
            "sampling": {"min_positives_per_split": 1, "max_rows": None},
        }
    )


def snapshot(day: dt.date, seed: int, customers: int = 60) -> pd.DataFrame:
    """One CAR snapshot; some customers skip months, `r` is mostly 0 (recency has gaps to carry)."""
    rng = np.random.default_rng(seed)
    keep = [c for c in range(customers) if (c + day.month) % 7 != 0]
    n = len(keep)
    v = rng.normal(10, 3, n).round(3)
    v[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"c{c:03d}" for c in keep],
            "snapshot_date": day,
            "v": v,
            "r": (rng.random(n) < 0.15).astype(int),
            "lab": (rng.random(n) < 0.3).astype(int),
            "segment": rng.choice(["a", "b"], n),
        }
    )


def write(warehouse: Warehouse, days: list[dt.date], market: str = "uk") -> None:
    for i, day in enumerate(days):
        warehouse.replace_partition(f"car.{market}", snapshot(day, i), {"snapshot_date": day}, "ingest")


def history(warehouse: Warehouse) -> pd.DataFrame:
    frame = warehouse.query("select * from prep.history order by customer_id, snapshot_date")
    return frame.drop(columns=["_written_at"])


def fresh(tmp_path: Path, days_and_seeds: list[tuple[dt.date, int]], specs: list[ModelSpec]) -> pd.DataFrame:
    """The history a first build on the same CAR gives (the reference for every incremental step)."""
    warehouse = Warehouse(tmp_path / "fresh" / "uk.duckdb")
    for day, seed in days_and_seeds:
        warehouse.replace_partition("car.uk", snapshot(day, seed), {"snapshot_date": day}, "ingest")
    build_market_history(warehouse, "uk", specs, "fresh")
    return history(warehouse)


def assert_same_values(got: pd.DataFrame, want: pd.DataFrame) -> None:
    columns = sorted(c for c in want.columns if "__" in c)
    assert sorted(c for c in got.columns if "__" in c) == columns
    assert len(got) == len(want)
    assert (
        got[["customer_id", "snapshot_date"]].to_numpy() == want[["customer_id", "snapshot_date"]].to_numpy()
    ).all()
    for column in columns:
        assert np.allclose(
            got[column].to_numpy(float, na_value=np.nan),
            want[column].to_numpy(float, na_value=np.nan),
            equal_nan=True,
        ), f"{column} differs from a fresh build"


def features_lineage(warehouse: Warehouse) -> dict[str, str]:
    rows = warehouse.query("select feature, _run_id from prep.history_features where market = 'uk'")
    return dict(zip(rows["feature"], rows["_run_id"], strict=True))


def test_two_models_of_a_market_share_one_history_computed_once(warehouse: Warehouse) -> None:
    # given a market and two specs asking for the same history
    write(warehouse, MONTHS)
    first = build_training_frame(warehouse, "uk", spec("a"), "run-a")
    stored = history(warehouse)

    # when the second model's frame is built
    second = build_training_frame(warehouse, "uk", spec("b"), "run-b")

    # then it computed nothing: the history is the first model's, and both frames read it
    assert first.history.action == "built"
    assert second.history.action == "current"
    assert (second.history.computed, second.history.rows) == ([], 0)
    pd.testing.assert_frame_equal(history(warehouse), stored)
    assert set(features_lineage(warehouse).values()) == {"run-a"}
    a, b = cell_frame(warehouse, "uk", "a"), cell_frame(warehouse, "uk", "b")
    pd.testing.assert_frame_equal(a, b)
    assert a["v__mean3"].notna().any()


def test_a_spec_with_an_extra_window_adds_only_its_columns(warehouse: Warehouse, tmp_path: Path) -> None:
    # given the history of a first spec
    write(warehouse, MONTHS)
    build_training_frame(warehouse, "uk", spec("a"), "run-a")
    before = history(warehouse)

    # when a spec asks for a six-month window too
    wider = spec("b", windows=[3, 6])
    summary = build_training_frame(warehouse, "uk", wider, "run-b")

    # then only the new window's columns were computed, the others are untouched, values are right
    assert summary.history.computed == ["v__mean6", "v__trend6"]
    assert (summary.history.action, summary.history.rows) == ("extended", 0)
    after = history(warehouse)
    pd.testing.assert_frame_equal(after[before.columns], before)
    assert set(after["_run_id"]) == {"run-a"}, "no row was rewritten"
    lineage = features_lineage(warehouse)
    assert {f for f, run in lineage.items() if run == "run-b"} == {"v__mean6", "v__trend6"}
    assert_same_values(after, fresh(tmp_path, [(d, i) for i, d in enumerate(MONTHS)], [spec("a"), wider]))
    assert cell_frame(warehouse, "uk", "b")["v__mean6"].notna().any()


def test_a_row_builds_the_union_once_and_leaves_out_a_spec_it_cannot_plan(warehouse: Warehouse) -> None:
    # given a market and three specs: two asking for different windows, one for a column the CAR lacks
    write(warehouse, MONTHS)
    narrow, wider = spec("a"), spec("b", windows=[3, 6])
    broken = spec("c", columns=["v", "not_in_car"])

    # when the row's history is built before its cells
    row = build_row_history(warehouse, "uk", [narrow, wider, broken], "run-row")

    # then one build computed the union of the good specs; the broken one is named, with why
    assert (row.summary.action, row.specs) == ("built", ["a", "b"])
    assert "not_in_car" in row.left_out["c"]
    assert set(features_lineage(warehouse).values()) == {"run-row"}
    assert {"v__mean3", "v__mean6"} <= set(features_lineage(warehouse))
    assert row.metadata()["history_row_models"] == 2
    # and the cells find nothing to compute, while the broken spec's own cell raises its error
    for model in (narrow, wider):
        assert build_training_frame(warehouse, "uk", model, "run-cell").history.action == "current"
    assert set(history(warehouse)["_run_id"]) == {"run-row"}
    with pytest.raises(PrepError, match="not_in_car"):
        build_training_frame(warehouse, "uk", broken, "run-cell")


def test_a_new_snapshot_recomputes_only_its_rows(warehouse: Warehouse, tmp_path: Path) -> None:
    # given a history built on seven months
    write(warehouse, MONTHS[:-1])
    build_training_frame(warehouse, "uk", spec("a"), "run-a")

    # when the eighth month lands and the frame is rebuilt
    warehouse.replace_partition("car.uk", snapshot(MONTHS[-1], 7), {"snapshot_date": MONTHS[-1]}, "ingest")
    summary = build_training_frame(warehouse, "uk", spec("a"), "run-c")

    # then only that month's rows are new, and the history equals a first build on eight months
    assert (summary.history.action, summary.history.refreshed_from) == ("refreshed", MONTHS[-1])
    after = history(warehouse)
    new = pd.to_datetime(after["snapshot_date"]).dt.date == MONTHS[-1]
    assert set(after.loc[new, "_run_id"]) == {"run-c"}
    assert set(after.loc[~new, "_run_id"]) == {"run-a"}
    assert_same_values(after, fresh(tmp_path, [(d, i) for i, d in enumerate(MONTHS)], [spec("a")]))
    assert prepared_snapshots(warehouse) == MONTHS


def prepared_snapshots(warehouse: Warehouse) -> list[dt.date]:
    days = warehouse.query("select distinct snapshot_date from prep.frames order by 1")["snapshot_date"]
    return [pd.Timestamp(d).date() for d in days]


def test_a_restated_snapshot_recomputes_from_its_month_on(warehouse: Warehouse, tmp_path: Path) -> None:
    write(warehouse, MONTHS)
    build_market_history(warehouse, "uk", [spec("a")], "run-a")

    restated = MONTHS[4]
    warehouse.replace_partition("car.uk", snapshot(restated, 99), {"snapshot_date": restated}, "restate")
    summary = build_market_history(warehouse, "uk", [spec("a")], "run-r")

    assert summary.refreshed_from == restated
    after = history(warehouse)
    later = pd.to_datetime(after["snapshot_date"]).dt.date >= restated
    assert set(after.loc[later, "_run_id"]) == {"run-r"}
    assert set(after.loc[~later, "_run_id"]) == {"run-a"}
    seeds = [(d, 99 if d == restated else i) for i, d in enumerate(MONTHS)]
    assert_same_values(after, fresh(tmp_path, seeds, [spec("a")]))


def test_a_removed_first_snapshot_recomputes_everything(warehouse: Warehouse, tmp_path: Path) -> None:
    write(warehouse, MONTHS)
    build_market_history(warehouse, "uk", [spec("a")], "run-a")

    warehouse.execute(lambda con: con.execute("delete from car.uk where snapshot_date = ?", [MONTHS[0]]))
    build_market_history(warehouse, "uk", [spec("a")], "run-p")

    after = history(warehouse)
    assert set(after["_run_id"]) == {"run-p"}
    assert_same_values(after, fresh(tmp_path, [(d, i) for i, d in enumerate(MONTHS)][1:], [spec("a")]))


def test_a_failed_refresh_leaves_the_history_and_a_rerun_recomputes_cleanly(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a history, a new month and a wider spec; the refresh fails after writing its rows
    write(warehouse, MONTHS[:-1])
    build_market_history(warehouse, "uk", [spec("a")], "run-a")
    before = history(warehouse)
    warehouse.replace_partition("car.uk", snapshot(MONTHS[-1], 7), {"snapshot_date": MONTHS[-1]}, "ingest")
    wider = spec("b", windows=[3, 6])

    def crash(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(history_module, "_record", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        build_market_history(warehouse, "uk", [wider], "run-x")

    # then nothing of it is stored; and the rerun does the whole work again, correctly
    pd.testing.assert_frame_equal(history(warehouse), before)
    monkeypatch.undo()
    summary = build_market_history(warehouse, "uk", [wider], "run-y")
    assert summary.action == "extended, refreshed"
    assert_same_values(history(warehouse), fresh(tmp_path, [(d, i) for i, d in enumerate(MONTHS)], [wider]))


def test_the_catalog_does_not_grow_with_models(paths) -> None:
    def prepare(market: str, models: int) -> set[str]:
        warehouse = paths.warehouses().market(market)
        write(warehouse, MONTHS, market=market)
        for k in range(models):
            model = spec(f"m{k}", windows=[3 + k])
            build_training_frame(warehouse, market, model, "run")
            build_model_samples(warehouse, market, model, "run")
        return prep_tables(warehouse)

    assert prepare("uk", 1) == prepare("fr", 3) == SHARED_PREP_TABLES
