"""The warehouse resource: a typed handle on the DuckDB file (see `factory_assets.core.warehouse`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from factory_assets.core.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file; connections are opened per operation and closed at once."""

    path: str = Field(description="Path of the DuckDB file.")
    lock_retries: int = Field(
        60, description="Retries (about 3 minutes) while another process holds the write lock."
    )

    def get(self) -> Warehouse:
        """A `Warehouse` over the configured file."""
        return Warehouse(Path(self.path), retries=self.lock_retries)
