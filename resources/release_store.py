"""PLACEHOLDER: to be completed by its owner."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class ReleaseStoreResource(dg.ConfigurableResource):
    """Directory of release files and manifests."""

    root: str = Field(description="Directory of release files and manifests.")
