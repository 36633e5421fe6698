"""Typed Dagster resources, chosen in one place: `build_resources`."""

from __future__ import annotations

from pathlib import Path

from factory_assets.core.paths import FactoryPaths
from resources.landing import LandingResource
from resources.model_store import ModelStoreResource
from resources.release_store import ReleaseStoreResource
from resources.reports import ReportStoreResource
from resources.warehouse import WarehouseResource


def build_resources(data_dir: Path) -> dict[str, object]:
    """Every resource the factory uses, laid out under one data directory."""
    paths = FactoryPaths(Path(data_dir))
    return {
        "warehouse": WarehouseResource(path=str(paths.warehouse)),
        "landing": LandingResource(landing_dir=str(paths.landing)),
        "model_store": ModelStoreResource(root=str(paths.models)),
        "release_store": ReleaseStoreResource(root=str(paths.releases)),
        "reports": ReportStoreResource(root=str(paths.reports)),
    }
