"""No hands from data to release: chained runs after ingest, schedules for scoring and retraining.

`new_car_sensor` (sensors.py) launches `car_ingest_job` for a market with new CAR files. Whenever
`car_snapshots` is materialised for a market, by that job or by a re-ingest from the UI or the CLI,
and its stored Data Checker 1 gate is open, `car_gate_sensor` launches the market's whole row of
models as one run. A market whose gate is closed stops there, and nothing else does.
"""

import dagster as dg

from factory_assets import interventions
from factory_assets.core.names import Stage
from factory_assets.deployment import ScheduleSettings
from factory_assets.jobs import factory_row_job, factory_status_job, retrain_job, row_tags, scoring_job
from factory_assets.partitions import markets_partitions

CAR_ASSET = "car_snapshots"
MAX_EVENTS_PER_TICK = 500


@dg.sensor(
    job=factory_row_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=10,
    description="Launch a market's row of models when car_snapshots was materialised (by any run: the "
    "landing sensor, the UI, the CLI) and its Data Checker 1 gate passed.",
)
def car_gate_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """One row run per market whose latest new `car_snapshots` materialisation opened the gate."""
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(CAR_ASSET), after_storage_id=after),
        limit=MAX_EVENTS_PER_TICK,
        ascending=True,
    ).records
    latest: dict[str, tuple[int, str | None]] = {}
    for record in records:
        event = record.asset_materialization
        if event is not None and event.partition:
            gate = event.metadata.get(Stage.DATA_CHECKER_1)
            latest[event.partition] = (record.storage_id, None if gate is None else str(gate.value))
    requests = []
    for market, (storage_id, gate) in sorted(latest.items()):
        if gate == "ok":
            requests.append(dg.RunRequest(run_key=f"row:{market}:{storage_id}", tags=row_tags(market)))
        else:
            context.log.info(f"'{market}': Data Checker 1 gate is {gate}: its row is not launched")
    cursor = str(records[-1].storage_id) if records else context.cursor
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _status_refresh_sensor(status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    word = status.value.lower()

    @dg.run_status_sensor(
        name=f"status_refresh_on_{word}_sensor",
        run_status=status,
        monitored_jobs=[factory_row_job, retrain_job, scoring_job, *interventions.JOBS],
        request_job=factory_status_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=10,
        description=f"Refresh the status grid after every row run or operator action that ends in {word}.",
    )
    def _sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"status:{context.dagster_run.run_id}")

    return _sensor


def _rows_for_every_market(context: dg.ScheduleEvaluationContext, prefix: str) -> list[dg.RunRequest]:
    markets = markets_partitions.get_partition_keys(dynamic_partitions_store=context.instance)
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"{prefix}:{m}:{stamp}", tags=row_tags(m)) for m in markets]


def _row_schedule(name: str, job: dg.JobDefinition, cron: str, prefix: str, description: str):
    """A schedule that requests one run per market, each covering the market's row of models."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        return _rows_for_every_market(context, prefix)

    return _schedule


def schedules(settings: ScheduleSettings) -> list[dg.ScheduleDefinition]:
    """The daily scoring and weekly retrain schedules, at the deployment's cron times."""
    return [
        _row_schedule(
            "daily_scoring_schedule",
            scoring_job,
            settings.daily_scoring,
            "score",
            "Score every market's latest data with its champions and release.",
        ),
        _row_schedule(
            "weekly_retrain_schedule",
            retrain_job,
            settings.weekly_retrain,
            "retrain",
            "Re-evaluate retrain triggers (drift, age, decay, new labels) for every cell.",
        ),
    ]


SENSORS = [
    car_gate_sensor,
    _status_refresh_sensor(dg.DagsterRunStatus.SUCCESS),
    _status_refresh_sensor(dg.DagsterRunStatus.FAILURE),
]
