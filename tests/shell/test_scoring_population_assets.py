"""End to end in process: a real export whose latest snapshot has no outcome yet is scored and released whole.

The CAR (`support.car_sample.evolving_car`, seeded) lands as Parquet files; its label column
`bought` is NULL throughout the latest snapshot, which also holds customers seen for the first time.
Two contiguous cells of one market row run through the real assets (car_snapshots -> training_frame
-> model_samples -> drift, challenger, champion, scores -> released_scores): `addon_movies`, given a
label target on `bought` for this test, and `addon_sports`, the repository's movement target. Each
released file must hold exactly the latest snapshot's eligible customers, at that snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pytest
from support.car_sample import LABEL, evolving_car, month_ends

from factory_assets import factory, ingest, prepare, release
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.specs_registry import SPECS
from resources import build_resources
from resources.landing import LandingResource

MARKET = "m1"
LABELLED, MOVEMENT = "addon_movies", "addon_sports"  # contiguous: one range run covers both
ROW = {
    "dagster/asset_partition_range_start": f"{MARKET}|{LABELLED}",
    "dagster/asset_partition_range_end": f"{MARKET}|{MOVEMENT}",
}
MONTHS = month_ends(dt.date(2025, 1, 1), 6)
CUSTOMERS, NEW = 1200, 80
LABEL_SPEC = ModelSpec.model_validate(
    {
        "name": LABELLED,
        "description": "Buys within the month (a label column known up to a date).",
        "target": {"kind": "label", "column": LABEL, "horizon": 0},
        "features": {
            "exclude": [LABEL],
            "history": {"columns": ["viewing_hours", "sessions"], "windows": [3]},
        },
        "output": {"format": "probability"},
    }
)


def expected_population(latest: pd.DataFrame) -> dict[str, set[str]]:
    """Each cell's eligible customers in the latest snapshot: all (label), non-holders (add-on)."""
    return {
        LABELLED: set(latest["customer_id"]),
        MOVEMENT: set(latest.loc[latest[MOVEMENT] == 0, "customer_id"]),
    }


def materialize(assets: list, instance: dg.DagsterInstance, resources: dict, **kwargs) -> None:
    result = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False, **kwargs)
    failures = [e.message for e in result.all_events if e.is_failure]
    assert result.success, failures


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("population_row")
    paths = FactoryPaths(root / "data")
    frames = evolving_car(CUSTOMERS, MONTHS, new_customers=NEW, seed=17)
    for frame in frames:
        target = paths.landing / MARKET / f"car_{frame['snapshot_date'].iloc[0].date()}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(target, index=False)
    resources = build_resources(paths.data_dir)
    resources["landing"] = LandingResource(landing_dir=str(paths.landing), settle_seconds=0)
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        patch.setitem(SPECS, LABELLED, LABEL_SPEC)
        instance.add_dynamic_partitions("markets", [MARKET])
        materialize(ingest.ASSETS, instance, resources, partition_key=MARKET)
        materialize(prepare.ASSETS, instance, resources, tags=ROW)
        materialize([*factory.ASSETS, *factory.CHECKS], instance, resources, tags=ROW)
        materialize([release.released_scores], instance, resources, tags=ROW)
        yield {"frames": frames, "paths": paths, "warehouse": paths.warehouses().union()}


@pytest.mark.parametrize("model", [LABELLED, MOVEMENT])
def test_the_released_file_is_the_latest_snapshots_eligible_customers(released, model: str) -> None:
    latest = released["frames"][-1]
    expected = expected_population(latest)[model]
    new = {f"c{i:06d}" for i in range(CUSTOMERS, CUSTOMERS + NEW)}
    store = ReleaseStore(released["paths"].releases)

    manifest = store.read_manifest(MARKET, model)
    rows = store.load_release(manifest)

    assert manifest.snapshot_date == str(MONTHS[-1]), "the manifest states the scored snapshot"
    assert set(pd.to_datetime(rows["snapshot_date"]).dt.date) == {MONTHS[-1]}
    assert set(rows["customer_id"]) == expected
    assert len(rows) == len(expected)
    assert expected & new <= set(rows["customer_id"]) and expected & new, "new customers are scored"


@pytest.mark.parametrize("model", [LABELLED, MOVEMENT])
def test_the_release_record_and_the_training_use_what_they_should(released, model: str) -> None:
    warehouse = released["warehouse"]
    record = warehouse.query(
        "select status, snapshot_date, rows from release.releases where market = ? and model = ?",
        [MARKET, model],
    ).iloc[-1]
    assert record["status"] == "released"
    assert pd.Timestamp(record["snapshot_date"]).date() == MONTHS[-1]
    sampled = warehouse.query(
        "select count(*) as n, count(target) as known, max(snapshot_date) as last "
        "from prep.samples where market = ? and model = ?",
        [MARKET, model],
    ).iloc[0]
    assert sampled["n"] == sampled["known"] > 0, "samples hold only known outcomes"
    assert pd.Timestamp(sampled["last"]).date() < MONTHS[-1], "the unlabelled snapshot is never trained on"
