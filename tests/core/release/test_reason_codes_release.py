"""Reason codes end to end: an opted-in cell's batch files and API answers carry them, an opted-out one's not.

The real core stages run on a small CAR whose label depends on a few columns: training frame,
samples, challenger, champion decision, scoring, the release gate (Data Checker 2) and the API over
the release files. One CatBoost cell is released opted out, then opted in, then opted out again (so
`scores.scores` holds reason columns this cell no longer fills); one logistic cell is opted in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support.api_keys import TestKeys, make_keys
from support.car_sample import LABEL, month_ends, sample_car
from support.ingest import ingest_frames

from factory_assets.core.model.challenger import train_challenger_if_triggered
from factory_assets.core.model.decision import decide_champion
from factory_assets.core.model.reason_columns import reason_columns
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.release.gate import ReleaseOutcome, release_cell
from factory_assets.core.release.scoring import score_cell
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse
from serving.api import Score, TopScores, create_app

MARKET = "uk"
MONTHS = month_ends(dt.date(2024, 1, 1), 5)
CUSTOMERS = 2000
TOP_N = 2


def spec(name: str, family: str, reasons: bool) -> ModelSpec:
    """A label model of one family, released with a CSV, reason codes on or off."""
    return ModelSpec.model_validate(
        {
            "name": name,
            "target": {"kind": "label", "column": LABEL, "horizon": 0},
            "features": {"exclude": [LABEL]},
            "model": {"families": [family], "iterations": 80, "logistic": {"cv_folds": 3}},
            "output": {"csv": True, "reason_codes": {"enabled": reasons, "top_n": TOP_N}},
        }
    )


TREES, LINEAR = spec("trees", "catboost", False), spec("linear", "logistic", True)


def car(month: int, day: dt.date) -> pd.DataFrame:
    """One snapshot whose label depends on viewing, payments and calls (NULL in the latest snapshot)."""
    frame = sample_car(CUSTOMERS, day, seed=300 + month)
    logit = (
        -2.0
        + 0.06 * (frame["viewing_hours"] - 20)
        + 0.9 * frame["late_payments"]
        + 0.5 * frame["support_calls"]
    )
    draw = np.random.default_rng(400 + month).random(CUSTOMERS)
    bought = (draw < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame[LABEL] = pd.array([None] * CUSTOMERS if month == len(MONTHS) - 1 else bought, dtype="Int64")
    return frame


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> StageContext:
    """The CAR ingested, both cells prepared and trained, each with its first champion."""
    root = tmp_path_factory.mktemp("reasons")
    warehouse = Warehouse(root / "warehouse.duckdb")
    ingest_frames(warehouse, MARKET, [car(k, day) for k, day in enumerate(MONTHS)])
    ctx = StageContext(warehouse, root / "models", root / "reports", root / "releases", run_id="run")
    ctx.models_dir.mkdir()
    for model in (TREES, LINEAR):
        build_training_frame(warehouse, MARKET, model, "run")
        build_model_samples(warehouse, MARKET, model, "run")
        assert train_challenger_if_triggered(ctx, model, MARKET)["outcome"] == "trained"
        assert decide_champion(ctx, model, MARKET)["outcome"] == "promote"
    return ctx


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> TestKeys:
    return make_keys(tmp_path_factory.mktemp("deployment"))


@pytest.fixture(scope="module")
def api(cell: StageContext, keys: TestKeys) -> Iterator[TestClient]:
    with TestClient(create_app(cell.releases_dir, keys.file), headers=keys.headers) as client:
        yield client


def score_and_release(ctx: StageContext, model: ModelSpec) -> ReleaseOutcome:
    scored = score_cell(ctx, model, MARKET)
    assert ("reason_codes_seconds" in scored) == model.output.reason_codes.enabled, "the report says it"
    outcome = release_cell(ctx, model, MARKET)
    assert outcome.status == "released", outcome.reason
    return outcome


def batch_files(ctx: StageContext, outcome: ReleaseOutcome) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The release's Parquet and CSV files, as a consumer reads them."""
    manifest = outcome.in_force
    assert manifest is not None
    assert manifest.csv_file is not None
    folder = ReleaseStore(ctx.releases_dir).cell_dir(MARKET, manifest.model)
    return pd.read_parquet(folder / manifest.file), pd.read_csv(folder / manifest.csv_file, dtype=str)


def customer(api: TestClient, model: str, customer_id: str) -> dict:
    response = api.get(f"/scores/{MARKET}/{model}/{customer_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    Score.model_validate(body)
    return body


def assert_reasons(reasons: list[dict]) -> None:
    """Reasons as the API gives them: 1..TOP_N features, largest absolute contribution first."""
    assert 1 <= len(reasons) <= TOP_N
    sizes = [abs(r["contribution"]) for r in reasons]
    assert sizes == sorted(sizes, reverse=True)
    assert all(isinstance(r["feature"], str) for r in reasons)


def test_an_opted_out_release_carries_no_reason_codes(cell: StageContext, api: TestClient) -> None:
    outcome = score_and_release(cell, TREES)
    parquet, csv = batch_files(cell, outcome)

    assert not any(c.startswith("reason_") for c in parquet.columns)
    assert not any(c.startswith("reason_") for c in csv.columns)
    assert "reasons" not in customer(api, "trees", str(parquet["customer_id"].iloc[0]))


def test_an_opted_in_release_carries_reason_codes_in_its_files_and_api(cell: StageContext, api: TestClient):
    # given the CatBoost cell released opted out (the previous test), now opted in
    opted_in = TREES.model_copy(update={"output": spec("trees", "catboost", True).output})
    outcome = score_and_release(cell, opted_in)
    parquet, csv = batch_files(cell, outcome)

    # then both batch files end with the reason slots, after the release id
    assert list(parquet.columns[-3 * TOP_N - 1 :]) == ["release_id", *reason_columns(TOP_N)]
    assert list(csv.columns) == list(parquet.columns)
    assert parquet["reason_1_feature"].notna().all(), "every customer has a first reason"
    assert csv["reason_1_feature"].tolist() == parquet["reason_1_feature"].tolist()
    top = parquet[["reason_1_contribution", "reason_2_contribution"]].abs()
    assert (top["reason_1_contribution"] >= top["reason_2_contribution"]).all()
    # and the API gives the same reasons for a customer, and for the top customers
    row = parquet.iloc[0]
    body = customer(api, "trees", str(row["customer_id"]))
    assert_reasons(body["reasons"])
    assert body["reasons"][0]["feature"] == row["reason_1_feature"]
    assert body["reasons"][0]["contribution"] == pytest.approx(row["reason_1_contribution"])
    best = api.get(f"/scores/{MARKET}/trees/top", params={"n": 5})
    assert best.status_code == 200
    TopScores.model_validate(best.json())
    for scored in best.json()["scores"]:
        assert_reasons(scored["reasons"])


def test_opting_out_again_releases_without_reason_codes(cell: StageContext, api: TestClient) -> None:
    # scores.scores keeps the reason columns (other cells may fill them); this cell leaves them null
    outcome = score_and_release(cell, TREES)
    parquet, csv = batch_files(cell, outcome)

    assert not any(c.startswith("reason_") for c in [*parquet.columns, *csv.columns])
    assert "reasons" not in customer(api, "trees", str(parquet["customer_id"].iloc[0]))


def test_a_logistic_champion_releases_reason_codes(cell: StageContext, api: TestClient) -> None:
    outcome = score_and_release(cell, LINEAR)
    parquet, _ = batch_files(cell, outcome)

    assert list(parquet.columns[-3 * TOP_N :]) == reason_columns(TOP_N)
    assert outcome.in_force is not None
    assert outcome.in_force.columns == list(parquet.columns), "the manifest names the reason columns"
    assert parquet["reason_1_feature"].notna().all()
    assert_reasons(customer(api, "linear", str(parquet["customer_id"].iloc[0]))["reasons"])


def test_the_openapi_schema_documents_the_reasons(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()["components"]["schemas"]

    assert "opts in" in schema["Score"]["properties"]["reasons"]["description"]
    assert set(schema["Reason"]["properties"]) == {"feature", "value", "contribution"}
    assert "log-odds" in schema["Reason"]["properties"]["contribution"]["description"]
