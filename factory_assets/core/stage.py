"""What every per-cell stage function works with, and what it gives back.

Every stage of the core has one shape: `stage(ctx, spec, market) -> report` (the model is
`spec.name`). The Dagster shell builds one `StageContext` per run and turns each report into
materialisation metadata in one place (`factory_assets.cellrun.to_metadata`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from factory_assets.core.clock import utc_now
from factory_assets.core.warehouse import Warehouse

StageReport = Mapping[str, object]
"""What a stage returns for one cell: plain values, `Path`s (files), DataFrames (tables), dicts/lists
(JSON). The Dagster shell turns it into materialisation metadata; the core never renders it."""


@dataclass(frozen=True)
class StageContext:
    """The warehouse, where model artefacts, reports and releases live, the run id and the run's clock."""

    warehouse: Warehouse
    models_dir: Path
    reports_dir: Path
    releases_dir: Path
    run_id: str
    label_columns: frozenset[str] = frozenset()
    """CAR columns that are labels, never features (the contract's role 'label')."""
    now: dt.datetime = field(default_factory=utc_now)
    """Naive UTC; tests pass a fixed time to move the clock (for example to age a champion)."""
