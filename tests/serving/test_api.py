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
from support.api_keys import TestKeys, make_keys

from factory_assets.core.release import reader as release_reader
from factory_assets.core.release.publish import publish
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import OutputSpec
from serving.api import KEY_HEADER, MAX_TOP, Score, TopScores, create_app, default_releases_root

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
def keys(tmp_path: Path) -> TestKeys:
    return make_keys(tmp_path / "deployment")


@pytest.fixture
def client(store: ReleaseStore, keys: TestKeys) -> Iterator[httpx.Client]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(store.root, keys.file)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=keys.headers) as http:
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
    assert churn["available"]
    assert churn["release_id"] == manifest.release_id
    assert (churn["rows"], churn["output_format"], churn["snapshot_date"]) == (N, "both", "2026-10-31")


def test_every_customer_value_equals_the_release_file(client, store):
    for market, model in [("uk", "churn"), ("uk", "downgrade_tier"), ("de", "addon_kids")]:
        rows = release_rows(store, market, model)
        for customer_id, expected in rows.iterrows():
            body = client.get(f"/scores/{market}/{model}/{customer_id}").json()
            assert body["customer_id"] == customer_id
            assert body["release_id"] == expected["release_id"]
            assert body["decile"] == expected["decile"]
            assert body["snapshot_date"] == "2026-10-31"
            assert body["model_version"] == "v1"
            for field in ("probability", "percentile"):
                if field in rows.columns:
                    assert body[field] == pytest.approx(expected[field], abs=0), (model, field)
                else:
                    assert field not in body, (model, field)


def test_top_n_by_each_published_score(client, store):
    rows = release_rows(store, "uk", "churn").reset_index()
    body = client.get("/scores/uk/churn/top", params={"n": 5, "by": "probability"}).json()
    expected = rows.sort_values(["probability", "customer_id"], ascending=[False, True]).head(5)
    assert body["n"] == 5
    assert body["by"] == "probability"
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
    assert larger["scores"][:7] == top.json()["scores"]
    assert larger["n"] == 9
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

    assert created
    assert first["release_id"] != manifest.release_id
    assert second["release_id"] == manifest.release_id
    assert second["model_version"] == "v2"
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
    assert "uk/churn" in broken.json()["detail"]
    assert manifest.file in broken.json()["detail"]
    assert client.get("/scores/uk/churn/top").status_code == 503
    assert client.get("/scores/de/addon_kids/C-001").status_code == 200
    cells = {(c["market"], c["model"]): c for c in client.get("/cells").json()}
    assert not cells["uk", "churn"]["available"]
    assert "corrupt" in cells["uk", "churn"]["error"]
    assert cells[("de", "addon_kids")]["available"]

    repaired, _ = publish(store, "uk", "churn", scored(13), OutputSpec(format="both"), NOW)
    assert client.get("/scores/uk/churn/C-001").json()["release_id"] == repaired.release_id


def test_a_broken_manifest_gives_503_not_500(client, store):
    store.manifest_path("de", "addon_kids").write_text('{"market": "de"', encoding="utf-8")
    response = client.get("/scores/de/addon_kids/C-001")
    assert response.status_code == 503
    assert "manifest" in response.json()["detail"]
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
    assert reader.get("uk", "churn") is first
    assert reader.cached("uk", "churn") is first
    new, _ = publish(store, "uk", "churn", scored(21), OutputSpec(format="both"), NOW)
    assert reader.cached("uk", "churn") is None, "a swapped manifest is noticed without reading files"
    second = reader.get("uk", "churn")

    assert loads == [first.manifest.release_id, new.release_id]
    assert second.manifest.release_id == new.release_id
    assert {key[0] for key in reader._releases} == {new.release_id}, "the replaced release is no longer held"
    with pytest.raises(release_reader.UnknownCellError):
        reader.get("uk", "../etc")


# ---- API keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/cells", "/scores/uk/churn/top", "/scores/uk/churn/C-001", "/scores/de/addon_kids/C-001"],
)
def test_no_key_or_a_wrong_key_gets_401_naming_the_header(client, keys, path):
    wrong = keys.every_market[:-4] + "AAAA"
    for headers in ({KEY_HEADER: ""}, {KEY_HEADER: wrong}, {KEY_HEADER: "not-a-key"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, headers, response.text)
        assert KEY_HEADER in response.json()["detail"]
        assert "api-key create" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "ApiKey"


def test_a_scoped_key_reads_its_markets_and_gets_403_elsewhere(client, keys):
    scoped = keys.scoped_headers()
    assert client.get("/scores/uk/churn/C-001", headers=scoped).status_code == 200
    assert client.get("/scores/uk/churn/top", headers=scoped).status_code == 200
    outside = client.get("/scores/de/addon_kids/C-001", headers=scoped)
    assert outside.status_code == 403
    assert "'de'" in outside.json()["detail"]
    assert client.get("/scores/de/addon_kids/top", headers=scoped).status_code == 403
    cells = {(c["market"], c["model"]) for c in client.get("/cells", headers=scoped).json()}
    assert cells == {("uk", "churn"), ("uk", "downgrade_tier")}, "a scoped key lists only its markets"


def test_keys_are_stored_only_as_salted_hashes_and_a_new_key_works_without_a_restart(client, keys):
    stored = keys.file.read_text(encoding="utf-8")
    assert keys.every_market not in stored
    assert keys.every_market.split("_")[2] not in stored
    assert "sha256" in stored
    assert "salt" in stored
    from serving.keys import add_key

    late, _ = add_key(keys.file, "late", ["de"], NOW)
    assert client.get("/scores/de/addon_kids/C-001", headers={KEY_HEADER: late}).status_code == 200


def test_health_and_docs_need_no_key_and_the_openapi_document_names_the_scheme(client):
    bare = {KEY_HEADER: ""}
    assert client.get("/health", headers=bare).status_code == 200
    assert client.get("/docs", headers=bare).status_code == 200
    document = client.get("/openapi.json", headers=bare).json()
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": KEY_HEADER}
    top = document["paths"]["/scores/{market}/{model}/top"]["get"]
    assert top["security"] == [{"ApiKey": []}]
    assert {"401", "403"} <= set(top["responses"])


def test_a_release_file_deleted_under_the_running_service_stops_being_served(client, store):
    assert client.get("/scores/uk/churn/C-001").status_code == 200, "loaded into memory first"
    manifest = store.read_manifest("uk", "churn")
    path = store.cell_dir("uk", "churn") / manifest.file
    kept = path.read_bytes()
    path.unlink()

    gone = client.get("/scores/uk/churn/C-001")
    cells = {(c["market"], c["model"]): c for c in client.get("/cells").json()}
    assert gone.status_code == 503 and "missing" in gone.json()["detail"], gone.text
    assert not cells["uk", "churn"]["available"]
    assert "missing" in cells["uk", "churn"]["error"]

    path.write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
    cells = {(c["market"], c["model"]): c for c in client.get("/cells").json()}
    assert not cells["uk", "churn"]["available"]
    assert "corrupt" in cells["uk", "churn"]["error"]

    path.write_bytes(kept)
    assert client.get("/scores/uk/churn/C-001").status_code == 200, "the restored file is served again"


# ---- reports ----------------------------------------------------------------------------------------


def _reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    for name, text in {
        "status.html": "<h1>status</h1>",
        "cards/uk/churn.html": "<h1>card uk</h1>",
        "cards/de/addon_kids.html": "<h1>card de</h1>",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside", encoding="utf-8")
    return root


def test_reports_need_a_key_unless_public_and_never_leave_their_folder(tmp_path, store, keys):
    from fastapi.testclient import TestClient

    root = _reports(tmp_path)
    guarded = TestClient(create_app(store.root, keys.file, root))
    assert guarded.get("/reports/status.html").status_code == 401
    page = guarded.get("/reports/status.html", headers=keys.headers)
    assert (
        page.status_code == 200
        and "status" in page.text
        and page.headers["content-type"].startswith("text/html")
    )
    assert guarded.get("/reports/", headers=keys.headers).text == page.text, "/reports/ is the status page"
    scoped = keys.scoped_headers()
    assert guarded.get("/reports/cards/uk/churn.html", headers=scoped).status_code == 200
    assert guarded.get("/reports/cards/de/addon_kids.html", headers=scoped).status_code == 403
    assert guarded.get("/reports/status.html", headers=scoped).status_code == 403, (
        "the grid shows every market"
    )

    public = TestClient(create_app(store.root, keys.file, root, reports_public=True))
    assert public.get("/reports/cards/de/addon_kids.html").status_code == 200
    assert public.get("/scores/uk/churn/C-001").status_code == 401, "public reports, never public scores"
    for path in [
        "/reports/../secret.txt",
        "/reports/%2e%2e/secret.txt",
        "/reports/cards/",
        "/reports/nope.html",
    ]:
        assert public.get(path).status_code == 404, path
