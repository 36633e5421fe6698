"""`decide_champion` records a new champion's score reference before it stores the decision (issue 20).

The real core stages build a small labelled cell (CAR snapshots, training frame, samples, a trained
challenger) once per module; each test decides on a copy of it. A promotion scores the snapshot
before the latest with the new champion, stores the file in the model store and its hash in
`registry.score_references`, and only then writes the decision (decision 26); when the reference
cannot be recorded, no decision is stored, the cell keeps no champion and a rerun decides again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.car_sample import LABEL, month_ends, sample_car
from support.ingest import ingest_frames

from factory_assets.core.model import registry
from factory_assets.core.model.challenger import train_challenger_if_triggered
from factory_assets.core.model.decision import decide_champion
from factory_assets.core.model.score_reference import find_score_reference, load_score_reference
from factory_assets.core.model.store import ModelStore
from factory_assets.core.names import Table
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse

MARKET, MODEL = "uk", "take_up"
MONTHS = month_ends(dt.date(2024, 1, 1), 5)
CUSTOMERS = 1200
SPEC = ModelSpec.model_validate(
    {
        "name": MODEL,
        "target": {"kind": "label", "column": LABEL, "horizon": 0},
        "features": {"exclude": [LABEL]},
        "model": {"families": ["catboost"], "iterations": 60, "thread_count": 2},
    }
)


def labelled_car(month: int, day: dt.date) -> pd.DataFrame:
    """One seeded snapshot whose label depends on two columns (NULL in the latest snapshot)."""
    frame = sample_car(CUSTOMERS, day, seed=300 + month)
    logit = -1.5 + 0.06 * (frame["viewing_hours"] - 20) + 0.8 * frame["late_payments"]
    bought = (np.random.default_rng(400 + month).random(CUSTOMERS) < 1 / (1 + np.exp(-logit))).astype("int64")
    latest = month == len(MONTHS) - 1
    frame[LABEL] = pd.array([None] * CUSTOMERS if latest else bought, dtype="Int64")
    return frame


def context(root: Path) -> StageContext:
    """The cell's stage context over a factory laid out under `root`."""
    warehouse = Warehouse(root / "warehouse.duckdb")
    return StageContext(warehouse, root / "models", root / "reports", root / "releases", run_id="run")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cell with its CAR, training frame, samples and one undecided challenger (no champion yet)."""
    root = tmp_path_factory.mktemp("decision_reference")
    ctx = context(root)
    ctx.models_dir.mkdir()
    ingest_frames(ctx.warehouse, MARKET, [labelled_car(k, day) for k, day in enumerate(MONTHS)])
    build_training_frame(ctx.warehouse, MARKET, SPEC, "run")
    build_model_samples(ctx.warehouse, MARKET, SPEC, "run")
    assert train_challenger_if_triggered(ctx, SPEC, MARKET)["outcome"] == "trained"
    return root


@pytest.fixture
def cell(trained: Path, tmp_path: Path) -> StageContext:
    """A private copy of the trained cell."""
    return context(Path(shutil.copytree(trained, tmp_path / "cell")))


def spy_on_registry_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The registry tables written from now on, in order."""
    written: list[str] = []
    original = registry.write

    def write(warehouse: Warehouse, table: str, row: Any, run_id: str) -> None:
        original(warehouse, table, row, run_id)
        written.append(table)

    monkeypatch.setattr(registry, "write", write)
    return written


def test_a_promotion_records_the_new_champions_score_reference_before_the_decision(cell, monkeypatch):
    written = spy_on_registry_writes(monkeypatch)

    decided = decide_champion(cell, SPEC, MARKET)

    assert decided["outcome"] == "promote"
    assert written == [Table.SCORE_REFERENCES, Table.DECISIONS]
    version = str(decided["live_version"])
    reference = find_score_reference(cell.warehouse, MARKET, MODEL, version)
    assert reference is not None
    assert reference.decision_id == decided["decision_id"]
    assert reference.snapshot_date == MONTHS[-2]  # the snapshot before the one the release scores
    assert reference.rows == CUSTOMERS
    assert str(reference.rows) in str(decided["score_reference"])
    store = ModelStore(cell.models_dir)
    path = store.score_reference_path(version, reference.snapshot_date)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == reference.sha256
    scores = load_score_reference(store, reference)
    assert scores["customer_id"].nunique() == CUSTOMERS
    assert scores["probability"].between(0, 1).all()
    assert scores["probability"].mean() == pytest.approx(reference.mean_probability)
    assert scores["probability"].std() > 0.01, "a real model's scores, not a constant"


def test_without_a_recorded_reference_no_decision_is_stored_and_a_rerun_decides(cell, monkeypatch):
    def full_disk(self: ModelStore, version: str, snapshot: dt.date, frame: pd.DataFrame):
        raise OSError("no space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(ModelStore, "save_score_reference", full_disk)
        with pytest.raises(OSError, match="no space left"):
            decide_champion(cell, SPEC, MARKET)

    assert registry.decisions(cell.warehouse, MARKET, MODEL).empty
    assert registry.current_champion(cell.warehouse, MARKET, MODEL) is None
    assert list(cell.models_dir.glob("*.scores-*")) == []
    decided = decide_champion(cell, SPEC, MARKET)
    assert decided["outcome"] == "promote"
    assert find_score_reference(cell.warehouse, MARKET, MODEL, str(decided["live_version"])) is not None
