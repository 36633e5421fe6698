"""The warehouse resource: a typed handle on the per-market DuckDB files (`core.warehouse`)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from factory_assets.core.warehouse import MarketWarehouses, UnionWarehouse, Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse folder, one DuckDB file per market; connections are opened per operation."""

    root: str = Field(description="Folder of the per-market DuckDB files (`<market>.duckdb`).")
    legacy_file: str | None = Field(
        None,
        description="The one-file warehouse of earlier versions: while it exists and no market "
        "file does, every access fails with the migration command to run.",
    )
    lock_retries: int = Field(
        60, description="Retries (about 3 minutes) while another process holds a file's write lock."
    )

    def get(self) -> MarketWarehouses:
        """Every market's warehouse file."""
        legacy = Path(self.legacy_file) if self.legacy_file else None
        return MarketWarehouses(Path(self.root), retries=self.lock_retries, legacy_file=legacy)

    def market(self, market: str) -> Warehouse:
        """The warehouse file of `market`."""
        return self.get().market(market)

    def union(self, markets: list[str] | None = None) -> UnionWarehouse:
        """A read-only view over several markets' files (default: all)."""
        return self.get().union(markets)
