"""The scoring population: every eligible customer of the CAR's latest snapshot, whatever their outcome.

A real export carries labels only up to a date: its latest snapshot has no outcome yet (a NULL
label, no t + horizon snapshot). That snapshot must still be the one scored, with every eligible
customer (also those new in it), while training, validation and test read only known outcomes.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from support.car_sample import LABEL, evolving_car, month_ends
from support.ingest import ingest_frames

from factory_assets.core.prep import prepared
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.prep.sql import PrepError
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse

MARKET = "uk"
MONTHS = month_ends(dt.date(2024, 1, 1), 5)
CUSTOMERS, NEW = 400, 40
TENURED = {"column": "tenure_months", "op": ">=", "value": 12}
TARGETS = {
    "label_now": {"kind": "label", "column": LABEL, "horizon": 0},
    "label_next": {"kind": "label", "column": LABEL, "horizon": 1},
    "take_up": {"kind": "movement", "product": "addon_sports", "from": [0], "to": [1], "horizon": 1},
}
LAST_KNOWN = {"label_now": -2, "label_next": -3, "take_up": -2}
"""Index in MONTHS of the latest snapshot whose outcome is known (labels stop one month short)."""


def model_spec(name: str, target: dict, population: list[dict] | None = None) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": name,
            "target": target,
            "population": population if population is not None else [TENURED],
            "features": {"exclude": [LABEL], "history": {"columns": ["viewing_hours"], "windows": [3]}},
            "sampling": {"min_positives_per_split": 5},
        }
    )


def store(warehouse: Warehouse, frames: list[pd.DataFrame]) -> None:
    """Validate and write each snapshot exactly as the ingest does."""
    ingest_frames(warehouse, MARKET, frames, "test-run")


def eligible(frame: pd.DataFrame, target: dict) -> set[str]:
    """The customers of one CAR snapshot that the spec's population and 'from' values admit."""
    keep = frame["tenure_months"] >= 12
    if target["kind"] == "movement":
        keep &= frame[target["product"]].isin(target["from"])
    return set(frame.loc[keep, "customer_id"])


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, list[pd.DataFrame]]:
    warehouse = Warehouse(tmp_path_factory.mktemp("population") / "warehouse.duckdb")
    frames = evolving_car(CUSTOMERS, MONTHS, new_customers=NEW, seed=7)
    store(warehouse, frames)
    return warehouse, frames


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_latest_snapshot_is_scored_whole_although_its_outcome_is_unknown(car, name: str) -> None:
    # given a CAR whose latest snapshot has no outcome (labels NULL, no t + horizon snapshot)
    warehouse, frames = car
    target = TARGETS[name]
    expected = eligible(frames[-1], target)
    new = {f"c{i:06d}" for i in range(CUSTOMERS, CUSTOMERS + NEW)}
    assert expected & new, "the fixture puts new customers into the latest population"

    # when the frame is built and the scoring population read
    summary = build_training_frame(warehouse, MARKET, model_spec(name, target), "run")
    population = prepared.load_population(warehouse, MARKET, name, ["viewing_hours"])

    # then it is exactly the latest snapshot's eligible customers, new ones included, outcome unknown
    assert prepared.latest_snapshot(warehouse, MARKET, name) == MONTHS[-1]
    assert set(pd.to_datetime(population["snapshot_date"]).dt.date) == {MONTHS[-1]}
    assert set(population["customer_id"]) == expected
    assert len(population) == len(expected)
    assert population["target"].isna().all()
    assert summary.scoring_snapshot == MONTHS[-1]
    assert summary.scoring_rows == len(expected)
    assert MONTHS[-1] not in prepared.labelled_snapshots(warehouse, MARKET, name)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_samples_hold_only_known_outcomes(car, name: str) -> None:
    warehouse, _ = car
    spec = model_spec(name, TARGETS[name])
    build_training_frame(warehouse, MARKET, spec, "run")

    build_model_samples(warehouse, MARKET, spec, "run")

    samples = prepared.load_model_samples(warehouse, MARKET, name).frame
    assert samples["target"].notna().all()
    assert set(samples["target"]) == {0, 1}
    days = set(pd.to_datetime(samples["snapshot_date"]).dt.date)
    assert MONTHS[-1] not in days, "the unlabelled latest snapshot is never trained or tested on"
    assert max(days) == MONTHS[LAST_KNOWN[name]], "the test is the latest snapshot with known outcomes"


def test_an_empty_latest_population_fails_and_never_falls_back(tmp_path) -> None:
    # given an upgrade model and a latest snapshot where every customer is premium already
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    frames = evolving_car(200, MONTHS, seed=5)
    frames[-1]["base_tier"] = "premium"
    store(warehouse, frames)
    upgrade = {"kind": "movement", "product": "base_tier", "from": ["basic", "standard"], "to": ["premium"]}
    summary = build_training_frame(warehouse, MARKET, model_spec("upgrade", upgrade, []), "run")
    assert summary.scoring_rows == 0
    assert summary.last_snapshot == MONTHS[-2]

    # then the scoring population fails naming the latest snapshot, not the frame's last one
    with pytest.raises(PrepError, match=rf"uk/upgrade: no eligible customer to score in {MONTHS[-1]}"):
        prepared.load_population(warehouse, MARKET, "upgrade", [])
    assert prepared.latest_snapshot(warehouse, MARKET, "upgrade") == MONTHS[-1]


def test_a_frame_older_than_the_car_fails_instead_of_scoring_its_last_snapshot(tmp_path) -> None:
    # given a frame built before the latest CAR snapshot landed
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    frames = evolving_car(200, [*MONTHS, month_ends(MONTHS[-1] + dt.timedelta(days=1), 1)[0]], seed=3)
    store(warehouse, frames[:-1])
    build_training_frame(warehouse, MARKET, model_spec("take_up", TARGETS["take_up"]), "run")
    store(warehouse, frames[-1:])

    # then reading the population names the new snapshot and does not score the old one
    latest = frames[-1]["snapshot_date"].iloc[0].date()
    with pytest.raises(PrepError, match=rf"no eligible customer to score in {latest}.*rerun training_frame"):
        prepared.load_population(warehouse, MARKET, "take_up", [])
