"""API fuzzing: no generated request makes the scoring API answer 5xx other than its documented 503.

The app (`serving.api.create_app`) serves a releases folder holding a good cell in each output
format, a cell whose release file is corrupt and a cell whose manifest is not JSON. Schemathesis
generates requests from the app's own OpenAPI document (seeded and bounded: `derandomize=True`,
`max_examples`); a second, Hypothesis-driven test aims its requests at the real cells, real and
hostile customer ids and out-of-range parameters, which random path strings rarely reach. The only
5xx allowed is 503 for the two broken cells (documented: "503 for that cell only").

Requests carry a valid key (every market), a key scoped to `uk`, a wrong key or none, so the fuzzing
reaches both the data behind the key check and the key check itself; the report pages are served
from a small reports folder.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api_keys import make_keys

from factory_assets.core.release.publish import publish
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import OutputSpec
from serving.api import KEY_HEADER, create_app

GOOD_CELLS = {("uk", "churn"): "both", ("uk", "addon_kids"): "probability", ("de", "churn"): "percentile"}
BROKEN_CELLS = {("de", "addon_kids"): "corrupt_file", ("it", "churn"): "bad_manifest"}
CUSTOMERS = [f"UK{i:08d}" for i in range(60)]
SETTINGS = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _scores(model: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probability = rng.beta(2, 10, len(CUSTOMERS))
    rank = probability.argsort().argsort() + 1
    return pd.DataFrame(
        {
            "customer_id": CUSTOMERS,
            "snapshot_date": dt.date(2026, 10, 1),
            "probability": probability,
            "percentile": 100.0 * rank / len(CUSTOMERS),
            "decile": 10 - (rank - 1) * 10 // len(CUSTOMERS),
            "model_version": f"{model}-v{seed}",
        }
    )


@pytest.fixture(scope="module")
def releases_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("api_fuzz") / "releases"
    store = ReleaseStore(root)
    now = dt.datetime(2026, 10, 2, 6)
    cells = {**GOOD_CELLS, **dict.fromkeys(BROKEN_CELLS, "both")}
    for seed, ((market, model), output_format) in enumerate(sorted(cells.items())):
        publish(store, market, model, _scores(model, seed), OutputSpec(format=output_format, csv=True), now)
    corrupt = store.read_manifest("de", "addon_kids")
    path = store.cell_dir("de", "addon_kids") / corrupt.file
    path.write_bytes(path.read_bytes()[:-200])
    store.manifest_path("it", "churn").write_text("{not json", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("api_fuzz_deployment"))


@pytest.fixture(scope="module")
def app(releases_root, keys):
    reports = releases_root.parent / "reports"
    (reports / "cards" / "uk").mkdir(parents=True)
    (reports / "status.html").write_text("<h1>status</h1>", encoding="utf-8")
    (reports / "cards" / "uk" / "churn.html").write_text("<h1>card</h1>", encoding="utf-8")
    return create_app(releases_root, keys.file, reports)


def _allowed(path: str, status: int) -> bool:
    if status < 500:
        return True
    parts = path.strip("/").split("/")
    return status == 503 and len(parts) >= 3 and (parts[1], parts[2]) in BROKEN_CELLS


# The OpenAPI document does not depend on the releases root; the requests go to the fixture's app.
_NOWHERE = Path("/nonexistent-releases-root")
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(_NOWHERE, _NOWHERE / "keys.yaml", _NOWHERE)
)


@schema.parametrize()
@SETTINGS
def test_no_generated_request_gets_a_server_error(case, app, keys):
    response = case.call(app=app, headers=keys.headers)
    assert _allowed(case.formatted_path, response.status_code), (
        f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: {response.text[:300]}"
    )
    if response.status_code == 200:
        json.loads(response.text)  # every success is valid JSON


MARKETS = st.sampled_from(
    [*sorted({m for m, _ in [*GOOD_CELLS, *BROKEN_CELLS]}), "xx", "UK", "../uk", "uk%00"]
)
MODELS = st.sampled_from(
    [*sorted({m for _, m in [*GOOD_CELLS, *BROKEN_CELLS]}), "nope", "Churn", "..", "top"]
)
IDS = (
    st.sampled_from(CUSTOMERS) | st.text(max_size=80) | st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True)
)
QUERY = st.fixed_dictionaries(
    {},
    optional={
        "n": st.integers(-3, 20_000).map(str) | st.text(max_size=6),
        "by": st.sampled_from(["probability", "percentile", "decile", ""]) | st.text(max_size=8),
    },
)


KEY_CHOICES = st.sampled_from(["every", "scoped", "wrong", "none"])
REPORT_PATHS = st.sampled_from(
    ["status.html", "", "cards/uk/churn.html", "../x", "cards/de/a.html"]
) | st.text(max_size=40)


def _headers(keys, choice: str) -> dict[str, str]:
    values = {"every": keys.every_market, "scoped": keys.scoped, "wrong": keys.every_market[:-3] + "xyz"}
    return {KEY_HEADER: values[choice]} if choice in values else {}


@given(market=MARKETS, model=MODELS, customer=IDS, query=QUERY, key=KEY_CHOICES, report=REPORT_PATHS)
@SETTINGS
def test_targeted_requests_on_real_cells_get_no_server_error(
    app, keys, market, model, customer, query, key, report
):
    with TestClient(app, raise_server_exceptions=False, headers=_headers(keys, key)) as client:
        market, model, customer = (quote(part, safe="") for part in (market, model, customer))
        report = quote(report, safe="/")
        for path in (
            f"/scores/{market}/{model}/top",
            f"/scores/{market}/{model}/{customer}",
            "/cells",
            f"/reports/{report}",
        ):
            response = client.get(path, params=query)
            assert _allowed(path, response.status_code), f"GET {path} {query} -> {response.status_code}"
            if key in ("wrong", "none") and not path.startswith("/health"):
                assert response.status_code in (401, 404, 422), f"GET {path} without a valid key"


def test_broken_cells_answer_503_naming_the_cause_and_good_cells_still_serve(app, keys):
    with TestClient(app, raise_server_exceptions=False, headers=keys.headers) as client:
        corrupt = client.get("/scores/de/addon_kids/top")
        bad_manifest = client.get("/scores/it/churn/top")
        good = client.get("/scores/uk/churn/top", params={"n": 5})
        cells = client.get("/cells").json()
    assert corrupt.status_code == 503 and "corrupt" in corrupt.text, corrupt.text
    assert bad_manifest.status_code == 503 and "current.json" in bad_manifest.text, bad_manifest.text
    assert good.status_code == 200
    assert good.json()["n"] == 5
    available = {(c["market"], c["model"]): c["available"] for c in cells}
    assert (
        available[("uk", "churn")] and not available[("de", "addon_kids")] and not available[("it", "churn")]
    )
