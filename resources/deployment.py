"""The deployment resource: the folder that holds the contract, the specs and the settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from factory_assets.deployment import Deployment


class DeploymentResource(dg.ConfigurableResource):
    """The deployment folder (`FACTORY_PROJECT_DIR`) and where its data is kept."""

    project_dir: str = Field(description="The deployment folder: config/, model_specs/.")
    data_dir: str = Field(description="Where the deployment's data is kept.")

    def get(self) -> Deployment:
        """The deployment, its settings validated (a bad file raises naming the file and field)."""
        return Deployment(Path(self.project_dir), Path(self.data_dir))
