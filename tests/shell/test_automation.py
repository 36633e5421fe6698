"""No hands: a successful ingest launches the market's row; a failed one launches nothing."""

import datetime as dt
import os
import time

import dagster as dg
from support.car_sample import sample_car

from factory_assets import ingest
from factory_assets.automation import SENSORS, car_ingested_sensor, daily_scoring_schedule
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


def sensor_context(instance, result: dg.ExecuteInProcessResult) -> dg.RunStatusSensorContext:
    ends = ("PIPELINE_SUCCESS", "PIPELINE_FAILURE")
    event = next(e for e in result.all_events if e.event_type_value in ends)
    return dg.build_run_status_sensor_context(
        sensor_name="car_ingested_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=event,
    )


def test_successful_ingest_launches_the_whole_row_as_one_run(instance, resources, paths):
    land(paths, "uk")
    result = run_ingest(instance, resources, "uk")
    assert result.success
    request = car_ingested_sensor(sensor_context(instance, result))
    assert isinstance(request, dg.RunRequest)
    assert request.tags == row_tags("uk")
    assert request.partition_key_range == market_row_range("uk")
    assert request.run_key == f"row:{result.dagster_run.run_id}"


def test_failed_data_checker_1_fails_the_ingest_run_so_no_row_is_launched(instance, resources, paths):
    land(paths, "de", drop="arpu")
    result = run_ingest(instance, resources, "de")
    assert not result.success
    assert result.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert car_ingested_sensor._run_status == dg.DagsterRunStatus.SUCCESS  # reacts to successes only


def test_daily_schedule_requests_one_row_run_per_market(tmp_path):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:  # schedules need an instance ref
        instance.add_dynamic_partitions("markets", ["uk", "de"])
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 28, 6)
        )
        requests = daily_scoring_schedule(context)
    assert [r.tags["factory/market"] for r in requests] == ["uk", "de"]
    assert requests[0].run_key == "score:uk:2026-11-28"


def test_status_is_refreshed_after_success_and_failure():
    statuses = {s.name: s._run_status for s in SENSORS if s.name.startswith("status_refresh")}
    assert set(statuses.values()) == {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
