"""SQL history features against a pandas reference (missing months, short history, NULLs)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.prep_frames import cell_frame

from factory_assets.core.prep.features import plan_features
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.sql import PrepError
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

HISTORY = {"columns": ["v"], "lags": [1, 2], "windows": [2, 3], "aggregations": ["mean", "max", "min", "std"],
           "deltas": True, "trends": True, "recency": ["r"]}  # fmt: skip
SPEC = ModelSpec.model_validate(
    {
        "name": "h",
        "target": {"kind": "label", "column": "lab", "horizon": 0},
        "features": {"history": HISTORY},
    }
)
MONTHS = [dt.date(2024, m, 1) for m in (1, 2, 3, 4, 5, 6, 8)]  # July is missing for the whole market


def make_car(seed: int = 3) -> pd.DataFrame:
    """30 customers; some skip months, some join late (short history), some values are NULL."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(30):
        for k, day in enumerate(MONTHS):
            if (c % 5 == 1 and k == 3) or (c % 7 == 2 and k < 4) or (c % 11 == 3 and k in (1, 2)):
                continue
            value = None if rng.random() < 0.12 else round(float(rng.normal(10, 3)), 3)
            rows.append({"customer_id": f"c{c:02d}", "snapshot_date": day, "v": value,
                         "r": int(rng.random() < 0.3), "lab": int(rng.random() < 0.4)})  # fmt: skip
    return pd.DataFrame(rows)


def month(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def slope(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return np.nan
    x, y = np.array(points, dtype=float).T
    return float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else np.nan


def reference(car: pd.DataFrame) -> pd.DataFrame:
    """History features by brute force over calendar months, one customer at a time."""
    out = []
    for cid, group in car.groupby("customer_id"):
        values = {
            month(d): (np.nan if v is None else v) for d, v in zip(group.snapshot_date, group.v, strict=True)
        }
        recency = {month(d): r for d, r in zip(group.snapshot_date, group.r, strict=True)}
        for t in values:
            row = {"customer_id": cid, "snapshot_date": t}
            for k in (1, 2):
                row[f"v__lag{k}"] = values.get(t - k, np.nan)
                row[f"v__delta{k}"] = values[t] - row[f"v__lag{k}"]
            for w in (2, 3):
                window = [
                    (m, values[m]) for m in range(t - w + 1, t + 1) if m in values and not np.isnan(values[m])
                ]
                ys = np.array([y for _, y in window])
                row[f"v__mean{w}"] = ys.mean() if len(ys) else np.nan
                row[f"v__max{w}"] = ys.max() if len(ys) else np.nan
                row[f"v__min{w}"] = ys.min() if len(ys) else np.nan
                row[f"v__std{w}"] = ys.std(ddof=1) if len(ys) > 1 else np.nan
                row[f"v__trend{w}"] = slope(window)
            positive = [m for m in recency if m <= t and recency[m] > 0]
            row["r__recency"] = t - max(positive) if positive else np.nan
            out.append(row)
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(SQL frame, pandas reference), built once for the module."""
    warehouse = Warehouse(tmp_path_factory.mktemp("features") / "warehouse.duckdb")
    car = make_car()
    for day in MONTHS:
        part = car[car.snapshot_date == day]
        warehouse.replace_partition("car.uk", part, {"snapshot_date": day}, "test")
    build_training_frame(warehouse, "uk", SPEC, "run")
    sql = cell_frame(warehouse, "uk", "h")
    sql["snapshot_date"] = [month(pd.Timestamp(d).date()) for d in sql.snapshot_date]
    return sql, reference(car).sort_values(["customer_id", "snapshot_date"]).reset_index(drop=True)


def test_history_features_match_the_pandas_reference(frame: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    sql, ref = frame
    assert len(sql) == len(ref)
    assert (sql.customer_id.to_numpy() == ref.customer_id.to_numpy()).all()
    for column in ref.columns.drop(["customer_id", "snapshot_date"]):
        got = sql[column].to_numpy(dtype=float, na_value=np.nan)
        want = ref[column].to_numpy(dtype=float)
        assert np.allclose(got, want, equal_nan=True, atol=1e-9), f"{column} differs from the reference"


def test_lags_follow_calendar_months_not_rows(frame: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    sql, _ = frame
    # August's lag 1 is July, which no customer has: every August lag1 is NULL, lag2 (June) mostly not
    august = sql[sql.snapshot_date == month(dt.date(2024, 8, 1))]
    assert august["v__lag1"].isna().all()
    assert august["v__lag2"].notna().any()


def test_short_history_gives_null_lags_and_windows_over_what_exists(
    frame: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    sql, _ = frame
    first = sql.groupby("customer_id").head(1)
    assert first["v__lag1"].isna().all()
    assert first["v__std3"].isna().all()
    assert first["v__trend3"].isna().all()
    with_value = first[first["v"].notna()]
    assert (with_value["v__mean3"] == with_value["v"]).all(), "a one-month window averages that month"


def test_history_of_a_column_that_does_not_exist_fails_naming_it() -> None:
    spec = ModelSpec.model_validate(
        {
            "name": "h",
            "target": {"kind": "label", "column": "lab"},
            "features": {"history": {"columns": ["w"]}},
        }
    )
    columns = {"customer_id": "VARCHAR", "snapshot_date": "DATE", "lab": "INTEGER", "v": "DOUBLE"}
    with pytest.raises(PrepError, match=r"uk/h: features.history names column\(s\) \['w'\]"):
        plan_features(spec, columns, frozenset(), "uk/h")


def test_history_of_a_text_column_fails_naming_its_type() -> None:
    spec = ModelSpec.model_validate(
        {
            "name": "h",
            "target": {"kind": "label", "column": "lab"},
            "features": {"history": {"columns": ["s"]}},
        }
    )
    columns = {"customer_id": "VARCHAR", "snapshot_date": "DATE", "lab": "INTEGER", "s": "VARCHAR"}
    with pytest.raises(PrepError, match="history column 's' has type VARCHAR, not a number"):
        plan_features(spec, columns, frozenset(), "uk/h")


def test_candidates_skip_keys_lineage_labels_and_excluded_columns() -> None:
    spec = ModelSpec.model_validate(
        {"name": "h", "target": {"kind": "label", "column": "lab"}, "features": {"exclude": ["x"]}}
    )
    columns = {"customer_id": "VARCHAR", "snapshot_date": "DATE", "lab": "INTEGER", "x": "DOUBLE",
               "region": "VARCHAR", "joined": "DATE", "flag": "BOOLEAN", "_source_file": "VARCHAR",
               "_run_id": "VARCHAR", "_written_at": "TIMESTAMP", "other_label": "INTEGER"}  # fmt: skip
    plan = plan_features(spec, columns, frozenset({"other_label"}), "uk/h")
    assert [(c.name, c.kind) for c in plan.base] == [
        ("lab", "integer"),
        ("region", "string"),
        ("flag", "integer"),
    ]
    assert plan.unsupported == {"joined": "DATE"}
