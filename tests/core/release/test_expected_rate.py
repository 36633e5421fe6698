"""The expected rate of scores: the latest labelled population's rate, with the champion's mean there."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from factory_assets.core.model import registry
from factory_assets.core.names import Table
from factory_assets.core.release.expected_rate import ExpectedRate, choose, expected_rate
from factory_assets.core.warehouse import Warehouse

MARKET, MODEL = "uk", "churn"
OLD, NEW = "old" + "0" * 61, "new" + "0" * 61
MAY, JUNE = dt.date(2024, 5, 1), dt.date(2024, 6, 1)


def register(warehouse: Warehouse, version: str, metrics: dict, test_snapshots: list[str]) -> None:
    row = {"market": MARKET, "model": MODEL, "model_version": version}
    extra = {"metrics": json.dumps(metrics), "test_snapshots": json.dumps(test_snapshots)}
    registry.write(warehouse, Table.MODELS, {**row, **extra}, "t")


def realised(warehouse: Warehouse, version: str, snapshot: dt.date, n: int, positives: int) -> None:
    row = {"market": MARKET, "model": MODEL, "model_version": version, "snapshot_date": snapshot}
    registry.write(warehouse, Table.REALISED_PERFORMANCE, {**row, "n": n, "positives": positives}, "t")


def history(warehouse: Warehouse, version: str, snapshot: dt.date, probabilities: list[float]) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(len(probabilities))],
            "snapshot_date": snapshot,
            "probability": probabilities,
            "model_version": version,
            "market": MARKET,
            "model": MODEL,
        }
    )
    cell = {"market": MARKET, "model": MODEL, "snapshot_date": snapshot}
    warehouse.replace_partition(Table.SCORE_HISTORY, frame, cell, "t")


def read(warehouse: Warehouse, version: str) -> ExpectedRate:
    return warehouse.execute(lambda con: expected_rate(con, MARKET, MODEL, version))


def test_before_labels_arrive_the_rate_is_the_champions_test_rate_with_its_mean_there(warehouse):
    register(warehouse, OLD, {"base_rate": 0.04, "mean_predicted": 0.05}, [str(MAY)])

    found = read(warehouse, OLD)

    assert (found.rate, found.champion_mean, found.snapshot) == (0.04, 0.05, MAY)
    assert found.source.startswith(f"base_rate of {OLD[:12]} on its out-of-time test {MAY}")
    assert "no realised rate yet" in found.source


def test_the_realised_rate_comes_with_the_champions_own_scores_there(warehouse):
    register(warehouse, OLD, {"base_rate": 0.04, "mean_predicted": 0.05}, [str(MAY)])
    history(warehouse, OLD, JUNE, [0.02, 0.04, 0.06])
    realised(warehouse, OLD, JUNE, 200, 10)

    found = read(warehouse, OLD)

    assert found.rate == 0.05
    assert found.champion_mean == pytest.approx(0.04)
    assert found.source == (
        f"realised rate at {JUNE}, 200 customers with known outcome; "
        f"{OLD[:12]}'s mean probability there 0.0400 (its scores there)"
    )


def test_a_new_champion_uses_its_own_test_when_it_did_not_score_the_labelled_snapshot(warehouse):
    register(warehouse, NEW, {"base_rate": 0.035, "mean_predicted": 0.033}, [str(JUNE)])
    history(warehouse, OLD, JUNE, [0.02, 0.04, 0.06])
    realised(warehouse, OLD, JUNE, 200, 7)

    found = read(warehouse, NEW)

    assert (found.rate, found.champion_mean) == (0.035, 0.033)
    assert f"not the realised rate at {JUNE}" in found.source
    assert "the champion's mean on that population is unknown" in found.source


def test_without_the_champions_mean_anywhere_the_latest_rate_counts_uncarried():
    realised_only = ExpectedRate(0.5, "realised rate at 2024-06-01", JUNE)
    test_only = ExpectedRate(0.1, "test_base_rate of v1")

    found = choose(realised_only, test_only)

    assert found == realised_only
    assert choose(ExpectedRate(None, "none recorded"), ExpectedRate(None, "no row")).rate is None
