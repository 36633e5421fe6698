"""Retention: old CAR snapshots, unreferenced artefacts and superseded releases go; what is needed stays.

A synthetic factory layout (a 40-month CAR of a few customers, registry decisions, artefact files and
five releases of one cell, with file times set explicitly) exercises each rule; a copy of the real
released market checks that even the harshest policy keeps the champion and the release in force.
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest
from support.reliability import MARKET, MODEL, cached_clean_build, copy_factory

from factory_assets.core.model import registry
from factory_assets.core.model.store import ModelStore
from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.publish import publish
from factory_assets.core.release.retention import (
    RetentionError,
    RetentionPolicy,
    apply_retention,
    plan_retention,
    required_car_months,
)
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import OutputSpec
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import add_months
from factory_assets.specs_registry import SPECS

NOW = dt.datetime(2027, 6, 1)
FIRST = dt.date(2024, 1, 1)
MONTHS = 40
OLD, RECENT = NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=10)


def _age(path, when: dt.datetime) -> None:
    stamp = when.replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))


def _car(paths: FactoryPaths, wh: Warehouse) -> None:
    frames = []
    for k in range(MONTHS):
        snapshot = add_months(FIRST, k)
        frame = pd.DataFrame(
            {"customer_id": ["A1", "A2"], "snapshot_date": [snapshot] * 2, "arpu": [1.0, 2.0]}
        )
        file = paths.landing / "m1" / f"car_{snapshot}.parquet"
        file.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(file)
        frames.append(frame)
    car = pd.concat(frames, ignore_index=True)

    def create(con) -> None:
        con.register("car_frame", car)
        con.execute("create schema if not exists car; create table car.m1 as select * from car_frame")

    wh.execute(create)
    ledger = pd.DataFrame({"market": ["m1"], "snapshot_date": [FIRST], "status": ["ingested"]})
    wh.replace_partition("ops.car_files", ledger, {"market": "m1"}, "t")


def _registry(paths: FactoryPaths, wh: Warehouse) -> dict[str, str]:
    versions = {
        name: f"{name:0<64}"[:64] for name in ("champ", "oldchal", "newchal", "fresh", "orphan", "young")
    }
    decisions = pd.DataFrame(
        [
            ("d1", OLD - dt.timedelta(days=30), None, versions["champ"], "promote", versions["champ"]),
            ("d2", OLD, versions["champ"], versions["oldchal"], "keep", versions["champ"]),
            ("d3", RECENT, versions["champ"], versions["newchal"], "keep", versions["champ"]),
        ],
        columns=[
            "decision_id",
            "decided_at",
            "champion_version",
            "challenger_version",
            "outcome",
            "live_version",
        ],
    ).assign(market="m1", model=MODEL)
    wh.replace_partition(Table.DECISIONS, decisions, {"market": "m1"}, "t")
    trained = [(v, OLD) for k, v in versions.items() if k != "fresh"] + [(versions["fresh"], RECENT)]
    models = pd.DataFrame(trained, columns=["model_version", "trained_at"]).assign(market="m1", model=MODEL)
    wh.replace_partition(Table.MODELS, models, {"market": "m1"}, "t")
    paths.models.mkdir(parents=True, exist_ok=True)
    for name, version in versions.items():
        for suffix in (".cbm", ".reference.parquet"):
            path = paths.models / f"{version}{suffix}"
            path.write_bytes(version.encode())
            _age(path, NOW if name == "young" else OLD)
    return versions


def _releases(paths: FactoryPaths, wh: Warehouse, champion: str) -> list[str]:
    store, ids = ReleaseStore(paths.releases), []
    for k in range(5):
        rng = np.random.default_rng(k)
        probability = rng.random(20)
        scores = pd.DataFrame(
            {
                "customer_id": [f"C{i:03d}" for i in range(20)],
                "snapshot_date": add_months(FIRST, 30 + k),
                "probability": probability,
                "percentile": 100.0 * (probability.argsort().argsort() + 1) / 20,
                "decile": 1,
                "model_version": champion,
            }
        )
        released_at = OLD + dt.timedelta(days=30 * k)
        manifest, _ = publish(store, "m1", MODEL, scores, OutputSpec(format="both", csv=True), released_at)
        ids.append(manifest.release_id)
        row = pd.DataFrame(
            [
                {
                    "market": "m1",
                    "model": MODEL,
                    "release_id": manifest.release_id,
                    "released_at": released_at,
                    "status": "released",
                }
            ]
        )
        wh.replace_partition(Table.RELEASES, row, {"release_id": manifest.release_id}, "t")
    for path in store.cell_dir("m1", MODEL).iterdir():
        _age(path, OLD)
    return ids


@pytest.fixture(scope="module")
def built_layout(tmp_path_factory):
    paths = FactoryPaths(tmp_path_factory.mktemp("retention") / "data")
    warehouse = paths.warehouses().market("m1")
    _car(paths, warehouse)
    versions = _registry(paths, warehouse)
    releases = _releases(paths, warehouse, versions["champ"])
    return paths, versions, releases


@pytest.fixture
def layout(built_layout, tmp_path):
    source, versions, releases = built_layout
    paths = copy_factory(source, tmp_path / "data")  # copy2 keeps the file times the rules depend on
    return {"paths": paths, "wh": paths.warehouses().union(), "versions": versions, "releases": releases}


def _names(files) -> set[str]:
    return {p.name for p in files}


def test_a_car_window_shorter_than_the_specs_read_is_refused(layout):
    needed = required_car_months(SPECS)
    assert needed >= max(s.sampling.training_window_months + s.target.horizon for s in SPECS.values())
    with pytest.raises(RetentionError, match=f"shorter than the {needed} monthly snapshots"):
        plan_retention(layout["paths"], SPECS, RetentionPolicy(car_months=needed - 1), NOW)


def test_car_snapshots_beyond_the_window_are_deleted_rows_and_files(layout):
    paths, wh = layout["paths"], layout["wh"]
    plan = plan_retention(paths, SPECS, RetentionPolicy(car_months=36), NOW)
    oldest = [add_months(FIRST, k) for k in range(4)]
    assert plan.car_snapshots == {"m1": oldest}
    assert _names(plan.landing_files) == {f"car_{d}.parquet" for d in oldest}
    apply_retention(paths, plan)
    kept = wh.query("select distinct snapshot_date from car.m1 order by 1")["snapshot_date"]
    assert len(kept) == 36
    assert kept.iloc[0].date() == add_months(FIRST, 4)
    assert not any((paths.landing / "m1" / f"car_{d}.parquet").exists() for d in oldest)
    assert len(list((paths.landing / "m1").iterdir())) == 36
    assert len(wh.query("select * from ops.car_files")) == 1, "the ingest ledger is the audit trail: kept"


def test_artefacts_needed_by_a_champion_a_recent_decision_or_a_release_stay(layout):
    versions = layout["versions"]
    plan = plan_retention(layout["paths"], SPECS, RetentionPolicy(decision_days=180), NOW)
    doomed = {p.name.split(".")[0] for p in plan.artefacts}
    assert doomed == {versions["oldchal"], versions["orphan"]}, plan.kept_versions
    assert "current champion" in plan.kept_versions[versions["champ"]]
    assert "decision" in plan.kept_versions[versions["newchal"]]
    assert "trained" in plan.kept_versions[versions["fresh"]]
    assert versions["young"] not in doomed, "a file inside the grace period may still be being written"
    apply_retention(layout["paths"], plan)
    assert (layout["paths"].models / f"{versions['champ']}.cbm").exists()
    assert not (layout["paths"].models / f"{versions['orphan']}.cbm").exists()


def test_release_files_beyond_the_last_n_go_and_the_release_in_force_stays(layout):
    paths, releases = layout["paths"], layout["releases"]
    store = ReleaseStore(paths.releases)
    manifest_before = store.manifest_path("m1", MODEL).read_bytes()
    plan = plan_retention(paths, SPECS, RetentionPolicy(keep_releases=2), NOW)
    doomed = {p.name.split(".")[0] for p in plan.release_files}
    assert doomed == set(releases[:3])
    assert len(plan.release_files) == 12, "parquet, reference, csv and kept manifest of three releases"
    apply_retention(paths, plan)
    assert store.manifest_path("m1", MODEL).read_bytes() == manifest_before
    store.load_release(store.read_manifest("m1", MODEL))


def test_a_rolled_back_manifest_keeps_its_older_release(layout):
    paths, releases = layout["paths"], layout["releases"]
    store = ReleaseStore(paths.releases)
    old = store.read_manifest("m1", MODEL)
    folder = store.cell_dir("m1", MODEL)
    rolled_back = type(old)(
        **{
            **old.__dict__,
            "release_id": releases[0],
            "file": f"{releases[0]}.parquet",
            "reference_file": f"{releases[0]}.reference.parquet",
            "csv_file": f"{releases[0]}.csv",
        }
    )
    rolled_back = type(old)(
        **{
            **rolled_back.__dict__,
            "sha256": _sha(folder / rolled_back.file),
            "reference_sha256": _sha(folder / rolled_back.reference_file),
            "csv_sha256": _sha(folder / rolled_back.csv_file),
            "rows": 20,
        }
    )
    store.swap_manifest(rolled_back)
    plan = plan_retention(paths, SPECS, RetentionPolicy(keep_releases=1), NOW)
    apply_retention(paths, plan)
    store.load_release(store.read_manifest("m1", MODEL))  # the rolled-back release still verifies
    assert {p.name.split(".")[0] for p in plan.release_files} == set(releases[1:4])


def _sha(path) -> str:
    from factory_assets.core.release.store import sha256_bytes

    return sha256_bytes(path.read_bytes())


def test_young_files_are_never_deleted(layout):
    paths = layout["paths"]
    for path in ReleaseStore(paths.releases).cell_dir("m1", MODEL).iterdir():
        _age(path, NOW)
    plan = plan_retention(paths, SPECS, RetentionPolicy(keep_releases=0, grace_hours=24), NOW)
    assert plan.release_files == []


def test_retention_is_idempotent(layout):
    paths = layout["paths"]
    policy = RetentionPolicy(car_months=36, keep_releases=1)
    apply_retention(paths, plan_retention(paths, SPECS, policy, NOW))
    assert plan_retention(paths, SPECS, policy, NOW).summary() == {
        "car_snapshots": 0,
        "landing_files": 0,
        "artefacts": 0,
        "release_files": 0,
    }


def test_the_harshest_policy_keeps_a_real_factory_serving(tmp_path_factory, tmp_path):
    paths = copy_factory(cached_clean_build(tmp_path_factory.getbasetemp()), tmp_path / "data")
    far = dt.datetime.now() + dt.timedelta(days=3650)  # every decision old, every file past its grace
    plan = plan_retention(paths, SPECS, RetentionPolicy(keep_releases=0, decision_days=0, grace_hours=0), far)
    apply_retention(paths, plan)
    wh, store = paths.warehouses().union(), ReleaseStore(paths.releases)
    champion = registry.current_champion(wh, MARKET, MODEL)
    assert ModelStore(paths.models).verify(champion.version).is_file()
    assert store.load_release(store.read_manifest(MARKET, MODEL)) is not None
    assert plan.car_snapshots == {}, "the 9 months of the demo are inside the required window"
