"""Where the factory keeps its files, derived from one data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPECS_DIR = REPO_ROOT / "model_specs"
DEFAULT_DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True)
class FactoryPaths:
    """The file layout under one data directory."""

    data_dir: Path

    @property
    def warehouse(self) -> Path:
        """The DuckDB warehouse file."""
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
