"""PLACEHOLDER: to be completed by its owner."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class LandingResource(dg.ConfigurableResource):
    """Folder of incoming CAR files."""

    landing_dir: str = Field(description="Folder of incoming CAR files.")
