"""The report pages: a model card per released cell and the status page that links them.

The status page links every card and drift report and draws AUC and volume sparklines per cell.

Layout under the reports folder (served by the scoring service under `/reports/`): `status.html`,
`cards/<market>/<model>.html`, `drift/<market>/<model>/<snapshot>.html` (written by the drift stage).
Links between the pages are relative, so they work from any base URL and from the files on disk.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from factory_assets.core.model.store import ModelStore
from factory_assets.core.names import Table
from factory_assets.core.release.store import ReleaseStore, write_atomic
from factory_assets.core.specs import ModelSpec
from factory_assets.core.status.card import render_card
from factory_assets.core.status.card_data import read_card_data
from factory_assets.core.status.html import render_status_html
from factory_assets.core.warehouse import Warehouse

STATUS_PAGE = "status.html"


@dataclass(frozen=True)
class CellPages:
    """A cell's report links (relative to the status page) and its trends for the sparklines."""

    card: str | None = None
    drift: str | None = None
    auc: list[tuple[str, float]] = field(default_factory=list)
    volume: list[tuple[str, float]] = field(default_factory=list)


def card_path(reports_dir: Path, market: str, model: str) -> Path:
    """Where the card of a cell is written."""
    return Path(reports_dir) / "cards" / market / f"{model}.html"


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def write_card(
    warehouse: Warehouse,
    store: ReleaseStore,
    models: ModelStore,
    spec: ModelSpec,
    market: str,
    reports_dir: Path,
) -> Path:
    """Render and write the card of `market` x `spec.name` for its release in force; returns its path."""
    data = read_card_data(warehouse, store, models, spec, market)
    path = card_path(reports_dir, market, spec.name)
    drift = _relative(data.drift_report, path.parent) if data.drift_report else None
    page = render_card(data, drift, _relative(Path(reports_dir) / STATUS_PAGE, path.parent))
    write_atomic(path, page.encode("utf-8"))
    return path


def _drift_reports(warehouse: Warehouse) -> dict[tuple[str, str], Path]:
    if not warehouse.table_exists(Table.DRIFT):
        return {}
    rows = warehouse.query(f"select market, model, report_path from {Table.DRIFT}")
    return {
        (r.market, r.model): Path(r.report_path)
        for r in rows.itertuples()
        if isinstance(r.report_path, str) and Path(r.report_path).is_file()
    }


def _series(frame: pd.DataFrame, value: str) -> dict[tuple[str, str], list[tuple[str, float]]]:
    found: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for r in frame.itertuples():
        found.setdefault((r.market, r.model), []).append(
            (str(pd.Timestamp(r.snapshot_date).date()), float(getattr(r, value)))
        )
    return found


def cell_trends(warehouse: Warehouse) -> tuple[dict, dict]:
    """Per cell, realised AUC per scored month and scored customers per month (oldest first)."""
    auc, volume = pd.DataFrame(), pd.DataFrame()
    if warehouse.table_exists(Table.REALISED_PERFORMANCE):
        auc = warehouse.query(
            f"select market, model, snapshot_date, avg(auc) as auc from {Table.REALISED_PERFORMANCE} "
            "where auc is not null group by all order by snapshot_date"
        )
    if warehouse.table_exists(Table.SCORE_HISTORY):
        volume = warehouse.query(
            f"select market, model, snapshot_date, count(*) as n from {Table.SCORE_HISTORY} "
            "group by all order by snapshot_date"
        )
    return _series(auc, "auc"), _series(volume, "n")


def write_reports(
    warehouse: Warehouse,
    store: ReleaseStore,
    models: ModelStore,
    specs: dict[str, ModelSpec],
    grid: pd.DataFrame,
    reports_dir: Path,
    now: dt.datetime,
) -> dict[str, Path]:
    """Write a card for every cell of `grid` with a release, then the status page linking them."""
    reports_dir = Path(reports_dir)
    pages: dict[tuple[str, str], CellPages] = {}
    written: dict[str, Path] = {}
    with warehouse.session():
        drift = _drift_reports(warehouse)
        auc, volume = cell_trends(warehouse)
        for cell in grid[["market", "model"]].itertuples(index=False):
            key = (cell.market, cell.model)
            card = None
            if cell.model in specs and store.read_manifest(cell.market, cell.model) is not None:
                spec = specs[cell.model]
                card = write_card(warehouse, store, models, spec, cell.market, reports_dir)
                written[f"{cell.market}/{cell.model}"] = card
            pages[key] = CellPages(
                card=_relative(card, reports_dir) if card else None,
                drift=_relative(drift[key], reports_dir) if key in drift else None,
                auc=auc.get(key, []),
                volume=volume.get(key, []),
            )
    status = reports_dir / STATUS_PAGE
    write_atomic(status, render_status_html(grid, now, pages).encode("utf-8"))
    written["status"] = status
    return written
