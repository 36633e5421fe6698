"""No hands from data to release: chained runs after ingest, schedules for scoring and retraining.

`new_car_sensor` (sensors.py) launches `car_ingest_job` for a market with new CAR files. When that
run succeeds (Data Checker 1's blocking checks passed), `car_ingested_sensor` launches the market's
whole row of models as one run. A failed Data Checker 1 fails the ingest run, so the market stops
there and nothing else does.
"""


import dagster as dg

from factory_assets.ingest import car_ingest_job
from factory_assets.jobs import factory_row_job, factory_status_job, retrain_job, row_tags, scoring_job
from factory_assets.partitions import markets_partitions

PARTITION_TAG = "dagster/partition"


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[car_ingest_job],
    request_job=factory_row_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    description="Launch a market's row of models when its CAR ingest and Data Checker 1 succeeded.",
)
def car_ingested_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """One row run per successful ingest run."""
    market = context.dagster_run.tags.get(PARTITION_TAG)
    if market is None:
        return dg.SkipReason(f"ingest run {context.dagster_run.run_id} has no market partition")
    return dg.RunRequest(run_key=f"row:{context.dagster_run.run_id}", tags=row_tags(market))


def _status_refresh_sensor(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    word = status.value.lower()

    @dg.run_status_sensor(
        name=f"status_refresh_on_{word}_sensor",
        run_status=status,
        monitored_jobs=[factory_row_job, retrain_job, scoring_job],
        request_job=factory_status_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=10,
        description=f"Refresh the status grid after every row run that ends in {word}.",
    )
    def _sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"status:{context.dagster_run.run_id}")

    return _sensor


def _rows_for_every_market(context: dg.ScheduleEvaluationContext, prefix: str) -> list[dg.RunRequest]:
    markets = markets_partitions.get_partition_keys(dynamic_partitions_store=context.instance)
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"{prefix}:{m}:{stamp}", tags=row_tags(m)) for m in markets]


@dg.schedule(
    job=scoring_job,
    cron_schedule="0 6 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: score every market's latest data with its champions and release.",
)
def daily_scoring_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """One scoring run per market, each covering the market's row of models."""
    return _rows_for_every_market(context, "score")


@dg.schedule(
    job=retrain_job,
    cron_schedule="0 3 * * 1",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly: re-evaluate retrain triggers (drift, age, decay, new labels) for every cell.",
)
def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """One retrain-evaluation run per market."""
    return _rows_for_every_market(context, "retrain")


SENSORS = [
    car_ingested_sensor,
    _status_refresh_sensor(dg.DagsterRunStatus.SUCCESS),
    _status_refresh_sensor(dg.DagsterRunStatus.FAILURE),
]
SCHEDULES = [daily_scoring_schedule, weekly_retrain_schedule]
