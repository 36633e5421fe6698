"""A cell where the linear model wins: its champion scores, releases and serves like any other.

The CAR's label is a logistic function of four numeric columns, so the regularised logistic
regression beats CatBoost on validation. The real core stages run on it: training frame, samples,
challenger (both families), champion decision, scoring, the release gate, and the release reader
that the HTTP API serves from.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from support.car_sample import LABEL, month_ends, sample_car
from support.ingest import ingest_frames

from factory_assets.core.model import registry
from factory_assets.core.model.challenger import train_challenger_if_triggered
from factory_assets.core.model.decision import decide_champion
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.release.gate import release_cell
from factory_assets.core.release.reader import ReleaseReader
from factory_assets.core.release.scoring import score_cell
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse

MARKET, MODEL = "uk", "linear_take_up"
MONTHS = month_ends(dt.date(2024, 1, 1), 6)
CUSTOMERS = 3000
SPEC = ModelSpec.model_validate(
    {
        "name": MODEL,
        "target": {"kind": "label", "column": LABEL, "horizon": 0},
        "features": {"exclude": [LABEL]},
        "model": {"iterations": 150, "thread_count": 2, "logistic": {"cv_folds": 3}},
    }
)


def linear_car(month: int, day: dt.date) -> pd.DataFrame:
    """One snapshot whose label is logistic in four numeric columns (NULL in the latest snapshot)."""
    frame = sample_car(CUSTOMERS, day, seed=100 + month)
    logit = (
        -2.0
        + 0.05 * (frame["viewing_hours"] - 20)
        - 0.08 * (frame["arpu"] - 30)
        + 0.9 * frame["late_payments"]
        + 0.5 * frame["support_calls"]
    )
    rng = np.random.default_rng(200 + month)
    bought = (rng.random(CUSTOMERS) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    latest = month == len(MONTHS) - 1
    frame[LABEL] = pd.array([None] * CUSTOMERS if latest else bought, dtype="Int64")
    return frame


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> StageContext:
    root = tmp_path_factory.mktemp("linear")
    warehouse = Warehouse(root / "warehouse.duckdb")
    ingest_frames(warehouse, MARKET, [linear_car(k, day) for k, day in enumerate(MONTHS)])
    build_training_frame(warehouse, MARKET, SPEC, "run")
    build_model_samples(warehouse, MARKET, SPEC, "run")
    ctx = StageContext(warehouse, root / "models", root / "reports", root / "releases", run_id="run")
    ctx.models_dir.mkdir()
    return ctx


def test_a_linear_champion_is_chosen_scores_releases_and_serves(cell: StageContext) -> None:
    # when the challenger stage fits both families and the champion stage decides
    trained = train_challenger_if_triggered(cell, SPEC, MARKET)
    decided = decide_champion(cell, SPEC, MARKET)

    # then the logistic family won on validation and became the first champion, with its record
    assert trained["outcome"] == "trained"
    assert str(trained["family_reason"]).startswith("logistic")
    assert list(trained["families"]["family"]) == ["catboost", "logistic"]
    version = str(trained["challenger_version"])
    assert (cell.models_dir / f"{version}.pkl").is_file(), "a logistic model is a hashed .pkl artefact"
    assert decided["outcome"] == "promote"
    assert decided["live_version"] == version
    assert decided["challenger_family"] == "logistic"
    with cell.warehouse.session():
        record = registry.model_record(cell.warehouse, MARKET, MODEL, version)
        decisions = registry.decisions(cell.warehouse, MARKET, MODEL)
    assert record.family == "logistic"
    assert record.calibrator.method in ("platt", "isotonic")
    kept = json.loads(decisions.iloc[-1]["family_selection"])
    assert kept["winner"] == "logistic"
    assert len(kept["families"]) == 2
    assert decisions.iloc[-1]["challenger_family"] == "logistic"
    assert record.metrics["ece"] < 0.03
    assert "brier" in record.metrics

    # and the linear champion scores the latest snapshot, passes the gate, and is served
    scored = score_cell(cell, SPEC, MARKET)
    assert scored["model_version"] == version
    assert scored["rows"] == CUSTOMERS
    outcome = release_cell(cell, SPEC, MARKET)
    assert outcome.status == "released", outcome.reason
    release = ReleaseReader(cell.releases_dir).get(MARKET, MODEL)
    assert len(release.customer_ids) == CUSTOMERS
    row = release.row(0)
    assert 0 < float(row["probability"]) < 1
    assert 0 < float(row["percentile"]) <= 100
