"""The scoring API against a real uvicorn server on a free loopback port, over real release files."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn

from factory_assets.core.release import reader as release_reader
from factory_assets.core.release.publish import publish
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import OutputSpec
from serving.api import MAX_TOP, Score, TopScores, create_app, default_releases_root

NOW = dt.datetime(2026, 11, 2, 8, 30)
N = 60


def scored(seed: int, n: int = N, version: str = "v1") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0.01, 0.5, n)
    rank = probability.argsort().argsort() + 1
    return pd.DataFrame(
        {
            "customer_id": [f"C-{i:03d}" for i in range(n)],
            "snapshot_date": pd.Timestamp("2026-10-31"),
            "probability": probability,
            "percentile": 100.0 * rank / n,
            "decile": 10 - (rank - 1) * 10 // n,
            "model_version": version,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    store = ReleaseStore(tmp_path / "releases")
    publish(store, "uk", "churn", scored(1), OutputSpec(format="both"), NOW)
    publish(store, "uk", "downgrade_tier", scored(2), OutputSpec(format="percentile"), NOW)
    publish(store, "de", "addon_kids", scored(3), OutputSpec(format="probability"), NOW)
    return store


@pytest.fixture
def client(store: ReleaseStore) -> Iterator[httpx.Client]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store.root), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        yield http
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def release_rows(store: ReleaseStore, market: str, model: str) -> pd.DataFrame:
    manifest = store.read_manifest(market, model)
    return store.load_release(manifest).set_index("customer_id")


def test_health_docs_and_cells(client, store):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/health",
        "/cells",
        "/scores/{market}/{model}/top",
        "/scores/{market}/{model}/{customer_id}",
    } <= set(paths)

    cells = {(c["market"], c["model"]): c for c in client.get("/cells").json()}

    assert set(cells) == {("uk", "churn"), ("uk", "downgrade_tier"), ("de", "addon_kids")}
    churn = cells[("uk", "churn")]
    manifest = store.read_manifest("uk", "churn")
    assert churn["available"] and churn["release_id"] == manifest.release_id
    assert (churn["rows"], churn["output_format"], churn["snapshot_date"]) == (N, "both", "2026-10-31")


def test_every_customer_value_equals_the_release_file(client, store):
    for market, model in [("uk", "churn"), ("uk", "downgrade_tier"), ("de", "addon_kids")]:
        rows = release_rows(store, market, model)
        for customer_id, expected in rows.iterrows():
            body = client.get(f"/scores/{market}/{model}/{customer_id}").json()
            assert body["customer_id"] == customer_id
            assert body["release_id"] == expected["release_id"]
            assert body["decile"] == expected["decile"]
            assert body["snapshot_date"] == "2026-10-31" and body["model_version"] == "v1"
            for field in ("probability", "percentile"):
                if field in rows.columns:
                    assert body[field] == pytest.approx(expected[field], abs=0), (model, field)
                else:
                    assert field not in body, (model, field)


def test_top_n_by_each_published_score(client, store):
    rows = release_rows(store, "uk", "churn").reset_index()
    body = client.get("/scores/uk/churn/top", params={"n": 5, "by": "probability"}).json()
    expected = rows.sort_values(["probability", "customer_id"], ascending=[False, True]).head(5)
    assert body["n"] == 5 and body["by"] == "probability"
    assert [s["customer_id"] for s in body["scores"]] == list(expected["customer_id"])

    default = client.get("/scores/uk/downgrade_tier/top").json()
    assert default["by"] == "percentile" and default["n"] == N, "n defaults to 100: the whole small release"
    assert [s["percentile"] for s in default["scores"]] == sorted(
        (s["percentile"] for s in default["scores"]), reverse=True
    )


def test_rendered_bodies_are_what_the_response_models_would_give(client, store):
    """The score endpoints render their JSON themselves; it must match their declared models."""
    top = client.get("/scores/uk/churn/top", params={"n": 7, "by": "percentile"})
    assert top.headers["content-type"] == "application/json"
    model = TopScores.model_validate_json(top.text)
    assert top.json() == model.model_dump(exclude_none=True)
    smaller = client.get("/scores/uk/churn/top", params={"n": 3, "by": "percentile"}).json()
    assert smaller["scores"] == top.json()["scores"][:3], "rows rendered for n=7 are reused for n=3"
    larger = client.get("/scores/uk/churn/top", params={"n": 9, "by": "percentile"}).json()
    assert larger["scores"][:7] == top.json()["scores"] and larger["n"] == 9
    one = client.get(f"/scores/de/addon_kids/{release_rows(store, 'de', 'addon_kids').index[0]}")
    assert one.json() == Score.model_validate_json(one.text).model_dump(exclude_none=True)


@pytest.mark.parametrize(
    "path, status",
    [
        ("/scores/fr/churn/C-001", 404),
        ("/scores/uk/no_such_model/C-001", 404),
        ("/scores/UK/churn/C-001", 404),
        ("/scores/uk/churn/C-999", 404),
        ("/scores/uk/churn/bad!id", 422),
        ("/scores/uk/churn/" + "x" * 65, 422),
        ("/scores/uk/churn/top?n=0", 422),
        (f"/scores/uk/churn/top?n={MAX_TOP + 1}", 422),
        ("/scores/uk/churn/top?n=ten", 422),
        ("/scores/uk/churn/top?by=raw_score", 422),
        ("/scores/uk/downgrade_tier/top?by=probability", 422),
        ("/scores/fr/churn/top", 404),
    ],
)
def test_bad_requests_get_a_clear_4xx_never_a_500(client, path, status):
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_a_new_release_is_served_without_a_restart(client, store):
    first = client.get("/scores/uk/churn/C-007").json()
    manifest, created = publish(
        store, "uk", "churn", scored(11, version="v2"), OutputSpec(format="both"), NOW
    )
    second = client.get("/scores/uk/churn/C-007").json()

    assert created and first["release_id"] != manifest.release_id
    assert second["release_id"] == manifest.release_id and second["model_version"] == "v2"
    assert second["probability"] == pytest.approx(
        release_rows(store, "uk", "churn").loc["C-007", "probability"]
    )


def test_a_corrupt_release_file_gives_503_for_that_cell_only(client, store):
    assert client.get("/scores/uk/churn/C-001").status_code == 200
    manifest, _ = publish(store, "uk", "churn", scored(12), OutputSpec(format="both"), NOW)
    path = store.cell_dir("uk", "churn") / manifest.file
    path.write_bytes(path.read_bytes()[:-40])

    broken = client.get("/scores/uk/churn/C-001")
    assert broken.status_code == 503
    assert "uk/churn" in broken.json()["detail"] and manifest.file in broken.json()["detail"]
    assert client.get("/scores/uk/churn/top").status_code == 503
    assert client.get("/scores/de/addon_kids/C-001").status_code == 200
    cells = {(c["market"], c["model"]): c for c in client.get("/cells").json()}
    assert not cells[("uk", "churn")]["available"] and "corrupt" in cells[("uk", "churn")]["error"]
    assert cells[("de", "addon_kids")]["available"]

    repaired, _ = publish(store, "uk", "churn", scored(13), OutputSpec(format="both"), NOW)
    assert client.get("/scores/uk/churn/C-001").json()["release_id"] == repaired.release_id


def test_a_broken_manifest_gives_503_not_500(client, store):
    store.manifest_path("de", "addon_kids").write_text('{"market": "de"', encoding="utf-8")
    response = client.get("/scores/de/addon_kids/C-001")
    assert response.status_code == 503 and "manifest" in response.json()["detail"]
    assert client.get("/scores/uk/churn/C-001").status_code == 200


def test_the_releases_root_comes_from_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FACTORY_DATA_DIR", str(tmp_path))
    assert default_releases_root() == tmp_path / "releases"


def test_the_reader_loads_each_release_once_and_forgets_replaced_ones(store, monkeypatch):
    loads: list[str] = []
    real_load = release_reader.load_release
    monkeypatch.setattr(
        release_reader, "load_release", lambda s, m: (loads.append(m.release_id), real_load(s, m))[1]
    )
    reader = release_reader.ReleaseReader(store.root)

    assert reader.cached("uk", "churn") is None, "nothing in memory before the first lookup"
    first = reader.get("uk", "churn")
    assert reader.get("uk", "churn") is first and reader.cached("uk", "churn") is first
    new, _ = publish(store, "uk", "churn", scored(21), OutputSpec(format="both"), NOW)
    assert reader.cached("uk", "churn") is None, "a swapped manifest is noticed without reading files"
    second = reader.get("uk", "churn")

    assert loads == [first.manifest.release_id, new.release_id]
    assert second.manifest.release_id == new.release_id
    assert set(reader._releases) == {new.release_id}, "the replaced release is no longer held"
    with pytest.raises(release_reader.UnknownCellError):
        reader.get("uk", "../etc")
