"""Typed Dagster resources, chosen in one place: `build_resources`."""

from __future__ import annotations

from pathlib import Path

from factory_assets.deployment import Deployment, current
from resources.deployment import DeploymentResource
from resources.landing import LandingResource
from resources.model_store import ModelStoreResource
from resources.release_store import ReleaseStoreResource
from resources.reports import ReportStoreResource
from resources.warehouse import WarehouseResource


def build_resources(data_dir: Path | None = None, deployment: Deployment | None = None) -> dict[str, object]:
    """Every resource the factory uses for a deployment (default: `current()`), its data under `data_dir`.

    `data_dir` (tests, benchmarks) overrides where the deployment keeps its data.
    """
    deployment = deployment or current()
    if data_dir is not None:
        deployment = Deployment(deployment.root, Path(data_dir))
    paths = deployment.paths
    return {
        "deployment": DeploymentResource(project_dir=str(deployment.root), data_dir=str(paths.data_dir)),
        "warehouse": WarehouseResource(root=str(paths.warehouse), legacy_file=str(paths.legacy_warehouse)),
        "landing": LandingResource(
            landing_dir=str(deployment.landing_dir),
            settle_seconds=deployment.settings.sources.settle_seconds,
            external_mapping_paths=[str(p) for p in deployment.external_mappings],
        ),
        "model_store": ModelStoreResource(root=str(paths.models)),
        "release_store": ReleaseStoreResource(root=str(paths.releases)),
        "reports": ReportStoreResource(root=str(paths.reports)),
    }
