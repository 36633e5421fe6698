"""No hands: a successful ingest launches the market's row; a failed one launches nothing."""

import datetime as dt
import os
import time

import dagster as dg
from support.car_sample import sample_car

from factory_assets import ingest
from factory_assets.automation import SENSORS, car_gate_sensor
from factory_assets.definitions import defs
from factory_assets.jobs import row_tags
from factory_assets.partitions import market_row_range

MONTHS = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]


def land(paths, market: str, drop: str | None = None) -> None:
    for day in MONTHS:
        frame = sample_car(80, day, seed=1)
        if drop and day == MONTHS[-1]:
            frame = frame.drop(columns=[drop])
        path = paths.landing / market / f"car_{day}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
        settled = time.time() - 60  # copied a minute ago: past the landing settle time
        os.utime(path, (settled, settled))


def run_ingest(instance, resources, market: str) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("markets", [market])
    defs = dg.Definitions(
        assets=ingest.ASSETS, asset_checks=ingest.CHECKS, jobs=ingest.JOBS, resources=resources
    )
    job = defs.resolve_job_def("car_ingest_job")
    return job.execute_in_process(instance=instance, partition_key=market, raise_on_error=False)


def gate_tick(instance, cursor: str | None = None) -> dg.SensorResult:
    return car_gate_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_an_open_gate_launches_the_whole_row_as_one_run(instance, resources, paths):
    land(paths, "uk")
    result = run_ingest(instance, resources, "uk")
    assert result.success
    tick = gate_tick(instance)
    (request,) = tick.run_requests
    assert request.tags == row_tags("uk")
    assert request.partition_key_range == market_row_range("uk")
    assert request.run_key.startswith("row:uk:")
    assert gate_tick(instance, tick.cursor).run_requests == [], "the same ingest launches its row once"


def test_a_closed_gate_launches_nothing(instance, resources, paths):
    land(paths, "de", drop="arpu")
    result = run_ingest(instance, resources, "de")
    assert not result.success
    events = instance.fetch_materializations(dg.AssetKey("car_snapshots"), limit=5).records
    assert [e.asset_materialization.metadata["data_checker_1"].value for e in events] == ["failed"]
    assert gate_tick(instance).run_requests == []


def test_a_manual_reingest_outside_the_ingest_job_starts_the_row(instance, resources, paths):
    land(paths, "uk")
    instance.add_dynamic_partitions("markets", ["uk"])
    first = dg.materialize(ingest.ASSETS, instance=instance, resources=resources, partition_key="uk")
    assert first.success
    tick = gate_tick(instance)
    again = dg.materialize(ingest.ASSETS, instance=instance, resources=resources, partition_key="uk")
    assert again.success
    (request,) = gate_tick(instance, tick.cursor).run_requests
    assert request.tags == row_tags("uk")


def test_daily_schedule_requests_one_row_run_per_market(tmp_path):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:  # schedules need an instance ref
        instance.add_dynamic_partitions("markets", ["uk", "de"])
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 28, 6)
        )
        requests = defs.resolve_schedule_def("daily_scoring_schedule")(context)
    assert [r.tags["factory/market"] for r in requests] == ["uk", "de"]
    assert requests[0].run_key == "score:uk:2026-11-28"


def test_status_is_refreshed_after_success_and_failure():
    statuses = {s.name: s._run_status for s in SENSORS if s.name.startswith("status_refresh")}
    assert set(statuses.values()) == {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
