"""`new_car_sensor`: watch the landing folder, add new markets, launch their CAR ingest.

The sensor only lists the landing folder (names and stat; it never opens the warehouse file and
never reads a landed CAR file), so a tick costs milliseconds. An external CAR, if configured, is
listed through an in-memory DuckDB only when its files change. The decision is
`core.car_watch.plan_tick`.
"""

import dagster as dg

from factory_assets.core.car.external import ExternalCarSource, ExternalMappingError
from factory_assets.core.car.watch import plan_tick
from factory_assets.ingest import car_ingest_job
from factory_assets.partitions import markets_partitions
from resources.landing import LandingResource

MAX_LISTED_PROBLEMS = 20


def _external_sources(
    context: dg.SensorEvaluationContext, landing: LandingResource
) -> list[ExternalCarSource]:
    """The external CARs; none (logged) when a mapping is broken: landed files still proceed."""
    try:
        return landing.external_sources()
    except ExternalMappingError as exc:
        context.log.error(f"external CARs skipped this tick: {exc}")
        return []


@dg.sensor(
    job=car_ingest_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Add markets whose first CAR file landed; ingest new or changed CAR files (run per market).",
)
def new_car_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
    """One `car_ingest_job` run per market with new or changed snapshot files; bad files are reported."""
    known = context.instance.get_dynamic_partitions(markets_partitions.name)
    plan = plan_tick(landing.folder().scan(), context.cursor, known, _external_sources(context, landing))
    for problem in plan.new_problems:
        context.log.warning(f"CAR landing problem (file skipped): {problem}")
    if plan.pending:
        context.log.info(f"{len(plan.pending)} CAR file(s) still being copied: {', '.join(plan.pending[:5])}")
    requests = [
        dg.RunRequest(
            partition_key=market,
            run_key=key,
            tags={
                "factory/market": market,
                "factory/car_changes": str(len(plan.changed_files.get(market, []))),
            },
        )
        for market, key in plan.runs.items()
    ]
    partition_requests = [markets_partitions.build_add_request(plan.new_markets)] if plan.new_markets else []
    if requests:
        return dg.SensorResult(
            run_requests=requests, dynamic_partitions_requests=partition_requests, cursor=plan.cursor
        )
    skip = "no new or changed CAR file"
    if plan.problems:
        listed = "; ".join(plan.problems[:MAX_LISTED_PROBLEMS])
        skip += f"; {len(plan.problems)} problem file(s) skipped: {listed}"
    return dg.SensorResult(skip_reason=skip, cursor=plan.cursor)


SENSORS = [new_car_sensor]
