"""Concurrency: two markets run at once in two processes on one deployment while the API is under load.

Two child processes (`support/reliability.py run`) ingest and run the `churn` cell of two markets
(`rb`, `rc`) at the same time against the same warehouse folder, models folder and releases folder.
Each market has its own DuckDB file, so neither run may wait for the other's lock: the logs must
hold no lock wait at all, not only no lock error. Meanwhile a bounded request loop reads the API
over the same releases folder. Both runs must succeed, the API must never answer 5xx, and both
releases must be correct: `rb`'s equal to a clean run of `rb` alone, `rc`'s complete and consistent
with its own scores and lineage.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api_keys import make_keys
from support.reliability import MARKET, MODEL, cached_clean_build, comparable_release_state, demo_config

from factory_assets.core.model import registry
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.warehouse import LOCK_WAIT
from factory_assets.demo.car import write_landing
from serving.api import create_app

HELPER = Path(__file__).parents[1] / "support" / "reliability.py"
OTHER = "rc"
MAX_REQUESTS = 3000


class ApiLoad(threading.Thread):
    """Requests to the API in a loop until stopped (at most MAX_REQUESTS), recording every status."""

    def __init__(self, releases: Path) -> None:
        super().__init__(daemon=True)
        keys = make_keys(releases.parent)
        self.client = TestClient(
            create_app(releases, keys.file), raise_server_exceptions=False, headers=keys.headers
        )
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        paths = ["/cells", f"/scores/{MARKET}/{MODEL}/top?n=50", f"/scores/{OTHER}/{MODEL}/top?n=5"]
        for count in range(MAX_REQUESTS):
            if self.stop.is_set():
                return
            path = paths[count % len(paths)]
            response = self.client.get(path)
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                self.errors.append(f"GET {path} -> {response.status_code}: {response.text[:200]}")
            time.sleep(0.01)


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory):
    clean = cached_clean_build(tmp_path_factory.getbasetemp())
    root = tmp_path_factory.mktemp("concurrency")
    paths = FactoryPaths(root / "data")
    write_landing(demo_config((MARKET, OTHER)), paths.landing)
    load = ApiLoad(paths.releases)
    load.start()
    logs = {market: root / f"{market}.log" for market in (MARKET, OTHER)}
    started = time.monotonic()
    children = {
        market: subprocess.Popen(
            [sys.executable, str(HELPER), "run", str(paths.data_dir), "--market", market],
            cwd=HELPER.parent.parent,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for market, log in logs.items()
    }
    try:
        codes = {market: child.wait(timeout=900) for market, child in children.items()}
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
        load.stop.set()
        load.join(timeout=30)
    elapsed = time.monotonic() - started
    texts = {market: log.read_text(encoding="utf-8", errors="replace") for market, log in logs.items()}
    return {"clean": clean, "paths": paths, "codes": codes, "logs": texts, "load": load, "elapsed": elapsed}


def test_both_runs_succeed_without_lock_errors(concurrent):
    for market, code in concurrent["codes"].items():
        log = concurrent["logs"][market]
        assert code == 0, f"market {market} failed (rc {code}):\n{log[-3000:]}"
        assert "WarehouseLockedError" not in log and "Could not set lock" not in log, market
        waits = [line for line in log.splitlines() if LOCK_WAIT in line]
        assert waits == [], f"market {market} waited for a warehouse lock {len(waits)} times: {waits[:3]}"
        assert "STEP_FAILURE" not in log, f"market {market} had a failing step"


def test_api_under_load_never_answers_a_server_error(concurrent):
    load = concurrent["load"]
    assert load.errors == [], load.errors[:3]
    assert sum(load.statuses.values()) >= 50, load.statuses
    assert set(load.statuses) <= {200, 404}, load.statuses


def test_the_first_market_releases_what_it_releases_alone(concurrent):
    together = comparable_release_state(concurrent["paths"])
    alone = comparable_release_state(concurrent["clean"])
    mine = {k: v for k, v in together["files"].items() if k.startswith(f"{MARKET}/")}
    assert mine == alone["files"], "running beside another market changed rb's release files"
    assert (
        together["manifests"][f"{MARKET}/{MODEL}/current.json"]
        == alone["manifests"][f"{MARKET}/{MODEL}/current.json"]
    )


def test_the_second_market_release_is_complete_and_carries_its_lineage(concurrent):
    paths = concurrent["paths"]
    store, wh = ReleaseStore(paths.releases), paths.warehouses().union()
    manifest = store.read_manifest(OTHER, MODEL)
    assert manifest is not None, "rc was not released"
    frame = store.load_release(manifest)  # verified against the manifest's sha256
    champion = registry.current_champion(wh, OTHER, MODEL)
    scores = wh.query("select customer_id from scores.scores where market = ? and model = ?", [OTHER, MODEL])
    assert set(frame["model_version"]) == {champion.version}
    assert frame["customer_id"].is_unique
    assert set(frame["customer_id"]) == set(scores["customer_id"])
    assert frame["customer_id"].str.startswith("RC").all()
    ledger = wh.query(
        "select market, status from release.releases where release_id = ?", [manifest.release_id]
    )
    assert list(ledger.itertuples(index=False, name=None)) == [(OTHER, "released")]
