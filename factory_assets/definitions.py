"""The Dagster code location: assets, checks, sensors, schedules and resources, wired once."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from factory_assets import factory, ingest, prepare, release, sensors
from factory_assets.core.paths import DEFAULT_DATA_DIR
from resources import build_resources

DATA_DIR = Path(os.environ.get("FACTORY_DATA_DIR", str(DEFAULT_DATA_DIR)))

defs = dg.Definitions(
    assets=[*ingest.ASSETS, *prepare.ASSETS, *factory.ASSETS, *release.ASSETS],
    asset_checks=[*ingest.CHECKS, *prepare.CHECKS, *factory.CHECKS, *release.CHECKS],
    sensors=[*sensors.SENSORS],
    resources=build_resources(DATA_DIR),
    executor=dg.in_process_executor,
)
