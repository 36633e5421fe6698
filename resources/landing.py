"""The CAR landing resource: the landing folder and, optionally, an external CAR mapped by config."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from factory_assets.core.car.external import ExternalCarSource, load_external_mapping
from factory_assets.core.car.source import LandingFolder


class LandingResource(dg.ConfigurableResource):
    """Folder of incoming CAR files (`<landing>/<market>/car_<YYYY-MM-DD>.parquet|csv`)."""

    landing_dir: str = Field(description="Folder of incoming CAR files.")
    settle_seconds: float = Field(
        2.0, ge=0, description="Files modified more recently than this are still being copied: wait."
    )
    external_mapping_path: str | None = Field(
        None,
        description="YAML mapping an external CAR onto the contract (see config/external_car_example.yaml).",
    )

    def folder(self) -> LandingFolder:
        """The landing folder as a CAR source (scan by name and stat, read one file)."""
        return LandingFolder(Path(self.landing_dir), self.settle_seconds)

    def external_source(self) -> ExternalCarSource | None:
        """The external CAR, if a mapping is configured; a bad mapping raises naming the file."""
        if self.external_mapping_path is None:
            return None
        return ExternalCarSource(load_external_mapping(Path(self.external_mapping_path)))
