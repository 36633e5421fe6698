"""The Dagster code location: assets, checks, jobs, sensors, schedules and resources, wired once.

The deployment (`FACTORY_PROJECT_DIR`, default: the repository root) decides the specs, the contract,
the sources, the checker thresholds and the schedules; a bad deployment folder fails the load with
the file, the field and the reason.
"""

import dagster as dg

from factory_assets import automation, factory, ingest, jobs, prepare, release, sensors
from factory_assets.specs_registry import DEPLOYMENT
from resources import build_resources

defs = dg.Definitions(
    assets=[*ingest.ASSETS, *prepare.ASSETS, *factory.ASSETS, *release.ASSETS],
    asset_checks=[*ingest.CHECKS, *prepare.CHECKS, *factory.CHECKS, *release.CHECKS],
    jobs=[*ingest.JOBS, *jobs.JOBS],
    sensors=[*sensors.SENSORS, *automation.SENSORS],
    schedules=automation.schedules(DEPLOYMENT.settings.schedules),
    resources=build_resources(deployment=DEPLOYMENT),
    executor=dg.in_process_executor,
)
