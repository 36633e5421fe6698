"""The model store resource: a typed handle on the artefact directory (`factory_assets.core.model_store`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from factory_assets.core.model.store import ModelStore


class ModelStoreResource(dg.ConfigurableResource):
    """Directory of model artefacts, each named by the SHA-256 of its content (`<sha256>.cbm`)."""

    root: str = Field(description="Directory of model artefacts.")

    def get(self) -> ModelStore:
        """A `ModelStore` over the configured directory."""
        return ModelStore(Path(self.root))
