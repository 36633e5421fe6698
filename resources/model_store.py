"""PLACEHOLDER: to be completed by its owner."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class ModelStoreResource(dg.ConfigurableResource):
    """Directory of model artefacts."""

    root: str = Field(description="Directory of model artefacts.")
