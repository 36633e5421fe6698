"""Where drift reports and the status page are written."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field


class ReportStoreResource(dg.ConfigurableResource):
    """A directory of HTML reports (Evidently drift reports, the factory status page)."""

    root: str = Field(description="Directory for reports.")

    def path_for(self, *parts: str) -> Path:
        """A report path under the root; parent folders are created."""
        path = Path(self.root).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
