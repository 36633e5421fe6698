"""The release store resource: where immutable release files and per-cell manifests live."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from factory_assets.core.release.store import ReleaseStore


class ReleaseStoreResource(dg.ConfigurableResource):
    """Directory of release files and manifests (`<market>/<model>/...`), served by the HTTP API."""

    root: str = Field(description="Directory of release files and manifests.")

    def get(self) -> ReleaseStore:
        """A `ReleaseStore` over the configured directory."""
        return ReleaseStore(Path(self.root))
