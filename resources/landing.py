"""The CAR landing resource: the landing folder and any external CARs mapped by configuration."""

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
    external_mapping_paths: list[str] = Field(
        default_factory=list,
        description="YAML files mapping external CARs onto the contract "
        "(see config/external_car_example.yaml).",
    )

    def folder(self) -> LandingFolder:
        """The landing folder as a CAR source (scan by name and stat, read one file)."""
        return LandingFolder(Path(self.landing_dir), self.settle_seconds)

    def external_sources(self) -> list[ExternalCarSource]:
        """The external CARs, one per configured mapping; a bad mapping raises naming the file."""
        return [ExternalCarSource(load_external_mapping(Path(path))) for path in self.external_mapping_paths]
