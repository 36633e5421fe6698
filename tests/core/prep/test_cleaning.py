"""Each cleaning rule on a designed CAR, the AUC helpers, and the decisions table."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from support.prep_frames import cell_frame

from factory_assets.core.prep import prepared
from factory_assets.core.prep.cleaning import auc_by_group, auc_from_ranks
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

MONTHS = [dt.date(2024, m, 1) for m in (1, 2, 3)]
N = 400


def make_snapshot(day: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    lab = (rng.random(N) < 0.3).astype(int)
    region = rng.choice(["north", "south", "east", "west"], N, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    region[:1] = "tiny"  # a level far rarer than min_category_share
    return pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in range(N)],
        "snapshot_date": day,
        "lab": lab,
        "good": rng.normal(size=N),
        "empty": np.nan,
        "mostly_missing": np.where(rng.random(N) < 0.8, np.nan, 1.0),
        "constant": 5,
        "ref": [f"r{day:%m}{i}" for i in range(N)],
        "leak": lab * 10 + rng.random(N),
        "region": region,
        "shop": rng.choice([f"s{k}" for k in range(8)], N).astype(object),
        "joined": dt.date(2020, 1, 1),
    })  # fmt: skip


SPEC = ModelSpec.model_validate({
    "name": "c",
    "target": {"kind": "label", "column": "lab", "horizon": 0},
    "features": {"history": {"columns": ["good"], "lags": [1], "windows": [2], "recency": []}},
    "cleaning": {"max_categories": 5, "min_category_share": 0.01},
})  # fmt: skip


def build(warehouse: Warehouse) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    for day in MONTHS:
        warehouse.replace_partition("car.uk", make_snapshot(day, rng), {"snapshot_date": day}, "test")
    summary = build_training_frame(warehouse, "uk", SPEC, "run")
    assert summary.labelled_rows == 3 * N
    return warehouse.query("select * from prep.variable_decisions where market = 'uk' and model = 'c'")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, pd.DataFrame]:
    """One frame for the read-only tests of this module (built once: it takes a second)."""
    warehouse = Warehouse(tmp_path_factory.mktemp("cleaning") / "warehouse.duckdb")
    return warehouse, build(warehouse)


@pytest.fixture
def decisions(built: tuple[Warehouse, pd.DataFrame]) -> pd.DataFrame:
    return built[1]


@pytest.fixture
def frame_warehouse(built: tuple[Warehouse, pd.DataFrame]) -> Warehouse:
    return built[0]


def final(decisions: pd.DataFrame, variable: str) -> pd.Series:
    rows = decisions[decisions.variable == variable]
    assert not rows.empty, f"no decision for {variable}"
    return rows.iloc[-1]


def test_every_rule_drops_what_it_should(decisions: pd.DataFrame) -> None:
    expected = {
        "lab": "target_product",
        "empty": "missing_share",
        "mostly_missing": "missing_share",
        "constant": "dominant_share",
        "ref": "id_like",
        "leak": "leakage_auc",
        "joined": "type",
    }
    for variable, rule in expected.items():
        row = final(decisions, variable)
        assert (row.rule, row.decision) == (rule, "drop"), (
            f"{variable}: {row.rule} {row.decision} {row.reason}"
        )


def test_an_all_missing_column_is_dropped_with_missing_share_one(decisions: pd.DataFrame) -> None:
    row = final(decisions, "empty")
    assert row.measured == 1.0
    assert row.reason.startswith("missing share 1.0")


def test_good_variables_are_kept_with_every_rule_recorded(decisions: pd.DataFrame) -> None:
    rows = decisions[decisions.variable == "good"]
    assert rows.rule.tolist() == ["missing_share", "dominant_share", "leakage_auc"]
    assert (rows.decision == "keep").all()
    history = decisions[decisions.variable.str.startswith("good__")]
    assert set(history.variable) == {
        "good__lag1",
        "good__delta1",
        "good__mean2",
        "good__max2",
        "good__trend2",
    }
    assert (history.decision == "keep").all(), "history features are exempt from id_like"


def test_rare_levels_read_as_other_from_the_frame(
    frame_warehouse: Warehouse, decisions: pd.DataFrame
) -> None:
    row = decisions[(decisions.variable == "region") & (decisions.rule == "categories")].iloc[0]
    assert row.decision == "group"
    assert row.measured == 5
    levels = set(cell_frame(frame_warehouse, "uk", "c").region)
    assert levels == {"north", "south", "east", "west", "other"}


def test_too_many_levels_keep_the_most_frequent(frame_warehouse: Warehouse, decisions: pd.DataFrame) -> None:
    row = decisions[(decisions.variable == "shop") & (decisions.rule == "categories")].iloc[0]
    assert row.decision == "group"
    assert row.measured == 8
    assert row.threshold == 5
    levels = set(cell_frame(frame_warehouse, "uk", "c").shop)
    assert len(levels) == 5 and "other" in levels, "at most max_categories levels, 'other' included"


def test_training_and_scoring_read_the_same_grouped_levels(frame_warehouse: Warehouse) -> None:
    # given 'tiny', a level rarer than min_category_share, in every snapshot
    population = prepared.load_population(frame_warehouse, "uk", "c", ["region", "shop"])
    frame = cell_frame(frame_warehouse, "uk", "c")
    latest = frame[frame.snapshot_date == frame.snapshot_date.max()].sort_values("customer_id")
    # then the scoring population reads it as 'other', exactly as the frame training samples from
    assert "tiny" not in set(population.region)
    assert population.region.tolist() == latest.region.tolist()
    assert population.shop.tolist() == latest.shop.tolist()


def test_the_frame_keeps_dropped_columns(frame_warehouse: Warehouse) -> None:
    columns = set(cell_frame(frame_warehouse, "uk", "c").columns)
    assert {"empty", "constant", "ref", "leak", "lab"} <= columns
    assert "joined" not in columns, "unsupported types are recorded, not carried"


def test_a_rerun_replaces_the_cells_decisions(warehouse: Warehouse) -> None:
    decisions = build(warehouse)
    build_training_frame(warehouse, "uk", SPEC, "run2")
    again = warehouse.query("select * from prep.variable_decisions where model = 'c'")
    assert len(again) == len(decisions)
    assert set(again._run_id) == {"run2"}


def test_auc_from_ranks_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.3).astype(int)
    x = np.round(rng.normal(size=500) + y * 0.5, 1)  # rounding creates ties
    ranks = pd.Series(x).rank(method="average").to_numpy()
    want = roc_auc_score(y, x)
    assert auc_from_ranks(ranks[y == 1].sum(), y.sum(), len(y)) == pytest.approx(max(want, 1 - want))
    assert auc_from_ranks(10.0, 0, 10) is None


def test_auc_by_group_matches_sklearn_on_target_rate_encoding() -> None:
    rng = np.random.default_rng(6)
    groups = rng.integers(0, 6, 600)
    y = (rng.random(600) < 0.1 + groups * 0.05).astype(int)
    n = np.bincount(groups).astype(float)
    p = np.bincount(groups, weights=y)
    encoded = (p / n)[groups]
    assert auc_by_group(n, p) == pytest.approx(roc_auc_score(y, encoded))
