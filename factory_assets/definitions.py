"""The Dagster code location: assets, checks, jobs, sensors, schedules and resources, wired once."""

import os
from pathlib import Path

import dagster as dg

from factory_assets import automation, factory, ingest, jobs, prepare, release, sensors
from factory_assets.core.paths import DEFAULT_DATA_DIR
from resources import build_resources

DATA_DIR = Path(os.environ.get("FACTORY_DATA_DIR", str(DEFAULT_DATA_DIR)))

defs = dg.Definitions(
    assets=[*ingest.ASSETS, *prepare.ASSETS, *factory.ASSETS, *release.ASSETS],
    asset_checks=[*ingest.CHECKS, *prepare.CHECKS, *factory.CHECKS, *release.CHECKS],
    jobs=[*ingest.JOBS, *jobs.JOBS],
    sensors=[*sensors.SENSORS, *automation.SENSORS],
    schedules=[*automation.SCHEDULES],
    resources=build_resources(DATA_DIR),
    executor=dg.in_process_executor,
)
