"""What the model stages (drift, challenger, champion, scores) work with, bundled for one run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from factory_assets.core.model.registry import utc_now
from factory_assets.core.model.store import ModelStore
from factory_assets.core.warehouse import Warehouse

StageReport = Mapping[str, object]
"""What a stage returns for one cell: plain values, `Path`s (files), DataFrames (tables), dicts/lists
(JSON). The Dagster shell turns it into materialisation metadata."""


@dataclass(frozen=True)
class StageContext:
    """The warehouse, the model store, the reports directory, the run id and the run's clock."""

    warehouse: Warehouse
    store: ModelStore
    reports_dir: Path
    run_id: str
    now: dt.datetime = field(default_factory=utc_now)
    """Naive UTC; tests pass a fixed time to move the clock (for example to age a champion)."""
