"""Where the factory keeps its files, derived from one data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from factory_assets.core.warehouse import MarketWarehouses

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPECS_DIR = REPO_ROOT / "model_specs"
DEFAULT_DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True)
class FactoryPaths:
    """The file layout under one data directory."""

    data_dir: Path

    @property
    def warehouse(self) -> Path:
        """The warehouse folder: one DuckDB file per market (`core.warehouse.MarketWarehouses`)."""
        return self.data_dir / "warehouse"

    def warehouses(self) -> MarketWarehouses:
        """The per-market warehouse files (refused while only a one-file warehouse exists)."""
        return MarketWarehouses(self.warehouse, legacy_file=self.legacy_warehouse)

    def warehouses_unchecked(self) -> MarketWarehouses:
        """The per-market warehouse files without the layout check (for the migration itself)."""
        return MarketWarehouses(self.warehouse)

    @property
    def legacy_warehouse(self) -> Path:
        """The one-file warehouse of earlier versions (`factory migrate-warehouse` splits it)."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def landing(self) -> Path:
        """Incoming CAR files: `landing/<market>/car_<YYYY-MM-DD>.parquet|csv`."""
        return self.data_dir / "landing"

    @property
    def models(self) -> Path:
        """Model artefacts, by content hash."""
        return self.data_dir / "models"

    @property
    def releases(self) -> Path:
        """Immutable release files and per-cell manifests (what the API serves)."""
        return self.data_dir / "releases"

    @property
    def reports(self) -> Path:
        """Evidently drift reports and the status page."""
        return self.data_dir / "reports"
