"""`new_car_sensor`: new markets added, one run per market with new files, cursor, bad files reported."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml
from support.car_sample import sample_car

from factory_assets.core.car.source import scan_landing
from factory_assets.core.car.watch import plan_tick
from factory_assets.sensors import SENSORS, new_car_sensor
from resources.landing import LandingResource

JAN, FEB = dt.date(2024, 1, 31), dt.date(2024, 2, 29)


def land(landing: Path, relative: str, age: float = 60.0) -> Path:
    """A small CAR parquet file at `landing/relative`, last modified `age` seconds ago."""
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sample_car(3, JAN).to_parquet(path)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def tick(instance: dg.DagsterInstance, landing: Path, cursor: str | None = None) -> dg.SensorResult:
    """Evaluate the sensor once and apply its partition requests as the daemon would."""
    resource = LandingResource(landing_dir=str(landing))
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing": resource})
    result = new_car_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def requested(result: dg.SensorResult) -> dict[str, str]:
    return {r.partition_key: r.run_key for r in result.run_requests or []}


def test_new_markets_are_added_and_each_gets_one_run(instance, tmp_path):
    land(tmp_path, f"uk/car_{JAN}.parquet")
    land(tmp_path, f"uk/car_{FEB}.parquet")
    land(tmp_path, f"de/car_{JAN}.csv")

    result = tick(instance, tmp_path)

    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["de", "uk"]]
    assert sorted(requested(result)) == ["de", "uk"]
    assert all(key.startswith(f"{m}:") for m, key in requested(result).items())
    assert set(instance.get_dynamic_partitions("markets")) == {"de", "uk"}
    cursor = json.loads(result.cursor)
    assert sorted(cursor["files"]) == [f"de/car_{JAN}.csv", f"uk/car_{JAN}.parquet", f"uk/car_{FEB}.parquet"]
    assert new_car_sensor.minimum_interval_seconds == 30
    assert new_car_sensor in SENSORS
    assert new_car_sensor.job_name == "car_ingest_job"


def test_next_tick_requests_nothing_until_a_file_is_new_or_changed(instance, tmp_path):
    land(tmp_path, f"uk/car_{JAN}.parquet")
    land(tmp_path, f"de/car_{JAN}.parquet")
    first = tick(instance, tmp_path)

    second = tick(instance, tmp_path, first.cursor)

    assert not second.run_requests
    assert second.skip_reason is not None
    assert "no new or changed CAR file" in second.skip_reason.skip_message

    land(tmp_path, f"uk/car_{FEB}.parquet")
    third = tick(instance, tmp_path, second.cursor)

    assert list(requested(third)) == ["uk"], "only the market with a new file runs"
    assert not third.dynamic_partitions_requests
    assert requested(third)["uk"] != requested(first)["uk"], "the run key follows the new files"

    land(tmp_path, f"uk/car_{FEB}.parquet", age=30)
    fourth = tick(instance, tmp_path, third.cursor)
    assert list(requested(fourth)) == ["uk"], "a rewritten file (new mtime) is a change"


def test_run_keys_are_deterministic_so_a_lost_cursor_does_not_duplicate_runs(tmp_path):
    land(tmp_path, f"uk/car_{JAN}.parquet")
    scan = scan_landing(tmp_path)

    first, again = plan_tick(scan, None, set()), plan_tick(scan, None, {"uk"})

    assert first.runs == again.runs, "Dagster skips a run key it has seen: the same files, the same key"
    assert first.new_markets == ["uk"]
    assert again.new_markets == []


def test_broken_and_badly_named_files_are_reported_while_others_proceed(instance, tmp_path):
    land(tmp_path, f"uk/car_{JAN}.parquet")
    land(tmp_path, f"DE-x/car_{JAN}.parquet")
    land(tmp_path, "it/notes.parquet")
    land(tmp_path, f"it/car_{JAN}.parquet")
    land(tmp_path, f"it/car_{JAN}.csv")

    result = tick(instance, tmp_path)

    assert sorted(requested(result)) == ["uk"], "the other markets proceed"
    assert set(instance.get_dynamic_partitions("markets")) == {"uk"}
    problems = json.loads(result.cursor)["problems"]
    assert any("market folder 'DE-x' is not a valid partition key" in p for p in problems)
    assert any("notes.parquet: file name does not match" in p for p in problems)
    assert sum("two files for snapshot 2024-01-31" in p for p in problems) == 2

    quiet = tick(instance, tmp_path, result.cursor)

    message = quiet.skip_reason.skip_message
    assert "4 problem file(s) skipped" in message
    assert "DE-x" in message
    assert "notes.parquet" in message
    plan = plan_tick(scan_landing(tmp_path), result.cursor, {"uk"})
    assert plan.problems and plan.new_problems == [], "a known problem is logged once, not every tick"


def test_half_written_files_are_ignored_until_settled(instance, tmp_path):
    land(tmp_path, f"uk/car_{JAN}.parquet.part")
    fresh = land(tmp_path, f"de/car_{JAN}.parquet", age=0)

    first = tick(instance, tmp_path)

    assert not first.run_requests
    assert not instance.get_dynamic_partitions("markets")
    assert json.loads(first.cursor)["files"] == {}

    stamp = time.time() - 60
    os.utime(fresh, (stamp, stamp))
    second = tick(instance, tmp_path, first.cursor)

    assert list(requested(second)) == ["de"]


def test_sensor_never_touches_the_warehouse(instance, paths):
    land(paths.landing, f"uk/car_{JAN}.parquet")
    tick(instance, paths.landing)
    assert not paths.warehouse.exists()


def test_external_car_markets_are_added_and_rerun_when_the_export_changes(instance, tmp_path):
    export = tmp_path / "export.csv"
    frame = sample_car(4, JAN).assign(land=["GB", "GB", "DE", "United Kingdom"])
    frame.assign(snapshot_date=frame["snapshot_date"].dt.strftime("%Y-%m-%d")).to_csv(export, index=False)
    mapping = tmp_path / "mapping.yaml"
    spec = {"path": str(export), "format": "csv", "date_column": "snapshot_date", "market_column": "land"}
    mapping.write_text(yaml.safe_dump({**spec, "market_codes": {"GB": "uk"}}), encoding="utf-8")
    resource = LandingResource(landing_dir=str(tmp_path / "landing"), external_mapping_paths=[str(mapping)])
    scan = scan_landing(tmp_path / "landing")

    first = plan_tick(scan, None, set(), resource.external_sources())
    second = plan_tick(scan, first.cursor, {"uk", "de"}, resource.external_sources())

    assert first.new_markets == ["de", "uk"]
    assert sorted(first.runs) == ["de", "uk"]
    assert any("market 'united kingdom' is not a valid partition key" in p for p in first.problems)
    assert second.runs == {}
    pd.concat([frame, frame.head(1).assign(customer_id="c9")]).to_csv(export, index=False)
    third = plan_tick(scan, second.cursor, {"uk", "de"}, resource.external_sources())
    assert sorted(third.runs) == ["de", "uk"]


def test_a_broken_external_mapping_does_not_hold_back_landed_files(instance, tmp_path):
    land(tmp_path / "landing", f"uk/car_{JAN}.parquet")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("path: x.csv\nformat: xlsx\n", encoding="utf-8")
    resource = LandingResource(landing_dir=str(tmp_path / "landing"), external_mapping_paths=[str(mapping)])
    context = dg.build_sensor_context(instance=instance, resources={"landing": resource})

    result = new_car_sensor(context)

    assert list(requested(result)) == ["uk"]


def test_a_withdrawn_file_reruns_its_market_so_the_gate_can_recover(instance, tmp_path):
    land(tmp_path, f"uk/car_{JAN}.parquet")
    bad = land(tmp_path, f"uk/car_{FEB}.parquet")
    land(tmp_path, f"de/car_{JAN}.parquet")
    first = tick(instance, tmp_path)

    bad.unlink()
    second = tick(instance, tmp_path, first.cursor)

    assert list(requested(second)) == ["uk"]
    assert not tick(instance, tmp_path, second.cursor).run_requests
