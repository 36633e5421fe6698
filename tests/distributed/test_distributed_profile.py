"""The distributed profile for real on loopback: PostgreSQL, Redis, two Celery workers, daemon, webserver.

One cluster serves the module (`control.up` ... `control.down`), on free ports, for a deployment with
one cheap model, so that a market's row is one cell:
1. Three markets' CAR land; the sensors ingest them and launch their rows, which run on both workers,
   two at once. Every run succeeds, no market ever has two runs at once, and each market's released
   scores equal those of the embedded profile (the same deployment under FACTORY_PROFILE=embedded,
   `factory once`, run meanwhile in a child process): the same rows, probabilities within 1e-9.
   Then the three markets' rows are submitted at once through the webserver: two rows of two markets
   run at the same time on the two workers, the third waits for a free slot, all succeed, and the
   releases still equal the embedded profile's (a rerun on the same data releases nothing new).
2. A row re-run is launched through the webserver; its worker is killed with SIGKILL (its whole
   process group, as a lost machine) during the run. The run monitor fails the run, a run retry
   re-executes it on the other worker, and the releases equal the clean ones, with no temporary file
   of an interrupted write left.
3. PostgreSQL or Redis not answering at start ends `factory distributed up` with the service and its
   address, not a trace.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster._core.events import DagsterEventType
from dagster_graphql import DagsterGraphQLClient
from support.distributed import (
    ACTIVE,
    MODEL,
    free_port,
    leftover_temp_files,
    overlap,
    remove_services_folder,
    services_folder,
    wait_for,
    write_deployment,
)
from support.reliability import comparable_release_state, demo_config

from factory_assets.cluster import control, services
from factory_assets.core.paths import REPO_ROOT, FactoryPaths
from factory_assets.core.release.store import ReleaseStore
from factory_assets.demo.car import write_landing
from factory_assets.deployment import DATA_ENV, PROFILE_ENV, Deployment, DistributedSettings

MARKETS = ("da", "db", "dc")
KILLED_MARKET = "da"
SUCCESS = dg.DagsterRunStatus.SUCCESS
SETTLE_TIMEOUT = 420
EMBEDDED_TIMEOUT = 600


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The deployment folder (distributed profile, free ports) and a services folder `postgres` reaches."""
    root = tmp_path_factory.mktemp("distributed")
    folder = services_folder()
    settings = {
        "services_dir": str(folder),
        "postgres": {"port": free_port()},
        "redis": {"port": free_port()},
        "webserver_port": free_port(),
        "monitor_interval_seconds": 3,
        "start_timeout_seconds": 120,
    }
    yield root, write_deployment(root / "deployment", settings)
    remove_services_folder(folder)


@pytest.fixture(scope="module")
def embedded_child(project):
    """The same deployment on the embedded profile, `factory once` in a child process (started early)."""
    root, deployment = project
    data = root / "embedded"
    write_landing(demo_config(MARKETS), data / "landing")
    env = {**os.environ, PROFILE_ENV: "embedded", DATA_ENV: str(data), "DAGSTER_HOME": str(root / "home")}
    log = root / "embedded.log"
    command = [sys.executable, "-m", "factory_assets.cli", "--project", str(deployment), "once"]
    with log.open("wb") as out:
        child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    yield child, FactoryPaths(data), log
    if child.poll() is None:
        child.kill()
        child.wait()


@pytest.fixture(scope="module")
def embedded(embedded_child) -> FactoryPaths:
    """The embedded profile's data folder once its run has finished (successfully)."""
    child, paths, log = embedded_child
    returncode = child.wait(timeout=EMBEDDED_TIMEOUT)
    tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
    assert returncode == 0, f"the embedded profile's run failed:\n{tail}"
    return paths


@pytest.fixture(scope="module")
def cluster(project, embedded_child):
    """The distributed profile up on loopback, the three markets' CAR landed for its sensors."""
    root, folder = project
    deployment = Deployment(folder, root / "data", "distributed")
    write_landing(demo_config(MARKETS), deployment.paths.landing)
    running = control.Cluster(deployment)
    try:
        control.up(running, os.environ)
        yield running
    finally:
        control.down(running)


@pytest.fixture(scope="module")
def instance(cluster):
    """The distributed profile's Dagster instance (PostgreSQL), as the daemon and workers see it."""
    with dg.DagsterInstance.from_config(str(cluster.layout.home)) as opened:
        yield opened


@pytest.fixture(scope="module")
def settled(instance):
    """Every run of the first pass, once each market's row succeeded and nothing is left to run."""

    def rows_released(runs) -> bool:
        rows = {r.market for r in runs if r.job == "factory_row_job" and r.status == SUCCESS}
        return rows == set(MARKETS)

    return wait_for(instance, rows_released, SETTLE_TIMEOUT, quiet_seconds=12)


@pytest.fixture(scope="module")
def rows_at_once(settled, cluster, instance):
    """The three markets' row runs, submitted at the same moment through the webserver, once settled."""
    client = DagsterGraphQLClient("127.0.0.1", port_number=cluster.settings.webserver_port)
    submitted = {client.submit_job_execution("factory_row_job", tags=_row_tags(m)) for m in MARKETS}

    def finished(runs) -> bool:
        return {r.run_id for r in runs if r.run_id in submitted and r.status not in ACTIVE} == submitted

    runs = wait_for(instance, finished, SETTLE_TIMEOUT, quiet_seconds=12)
    return [r for r in runs if r.run_id in submitted], runs


def released(paths: FactoryPaths, market: str) -> pd.DataFrame:
    """The release in force of `market`'s cell, rows in a stable order."""
    store = ReleaseStore(paths.releases)
    manifest = store.read_manifest(market, MODEL)
    assert manifest is not None, f"no release in force for {market}/{MODEL} under {paths.releases}"
    frame = store.load_release(manifest)
    return frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)


def test_a_service_down_at_start_is_named_with_its_address(tmp_path):
    postgres_port, redis_port = free_port(), free_port()
    settings = {
        "services_dir": str(tmp_path / "services"),
        "postgres": {"local": False, "port": postgres_port},
        "redis": {"local": False, "port": redis_port},
    }
    deployment = write_deployment(tmp_path / "deployment", settings)
    command = [sys.executable, "-m", "factory_assets.cli", "--project", str(deployment), "distributed", "up"]
    env = {**os.environ, DATA_ENV: str(tmp_path / "data")}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, f"`distributed up` did not fail:\n{done.stdout}\n{done.stderr}"
    assert f"PostgreSQL at 127.0.0.1:{postgres_port}" in done.stderr, done.stderr
    assert f"Redis at 127.0.0.1:{redis_port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, f"a stack trace instead of a message:\n{done.stderr}"
    assert not (tmp_path / "data" / "distributed" / "pids").exists(), "a process started anyway"


def test_three_markets_rows_run_on_two_workers_and_equal_the_embedded_profile(settled, embedded, cluster):
    failed = [r for r in settled if r.status != SUCCESS]
    assert not failed, f"runs that did not succeed: {failed}"
    rows = [r for r in settled if r.job == "factory_row_job"]
    assert sorted(r.market for r in rows) == sorted(MARKETS), rows
    assert len({r.worker for r in rows}) == 2, f"the rows did not spread over both workers: {rows}"
    # The sensors launch each market's row when its ingest succeeds, so rows may follow each other;
    # what must hold is that two markets' runs (ingest or row) ran at once on the two workers.
    assert any(
        overlap(a, b) for a in settled for b in settled if a.worker != b.worker and a.market != b.market
    ), f"no two markets' runs ran at once on two workers: {settled}"
    for market in MARKETS:
        own = [r for r in settled if r.market == market]
        twice = [(a, b) for a in own for b in own if a.run_id < b.run_id and overlap(a, b)]
        assert not twice, f"market {market} ran two runs at once: {twice}"
    distributed = cluster.deployment.paths
    for market in MARKETS:
        mine, theirs = released(distributed, market), released(embedded, market)
        assert list(mine.columns) == list(theirs.columns), market
        numeric = mine.select_dtypes("number").columns
        other = [c for c in mine.columns if c not in numeric]
        assert mine[other].equals(theirs[other]), f"{market}: the released rows differ"
        assert np.allclose(mine[numeric], theirs[numeric], rtol=0, atol=1e-9), f"{market}: the scores differ"


def test_three_markets_rows_submitted_at_once_share_the_two_workers(rows_at_once, embedded, cluster):
    rows, everything = rows_at_once
    assert sorted(r.market for r in rows) == sorted(MARKETS), rows
    assert all(r.status == SUCCESS for r in rows), f"rows that did not succeed: {rows}"
    assert len({r.worker for r in rows}) == 2, f"the rows did not spread over both workers: {rows}"
    pairs = [(a, b) for a, b in itertools.combinations(rows, 2) if overlap(a, b)]
    assert pairs, f"no two markets' rows ran at once: {rows}"
    assert all(a.worker != b.worker for a, b in pairs), f"two rows at once on one worker: {pairs}"
    all_three = [
        t
        for t in itertools.combinations(rows, 3)
        if all(overlap(a, b) for a, b in itertools.combinations(t, 2))
    ]
    assert not all_three, f"three rows ran at once on two single-slot workers: {rows}"
    for market in MARKETS:
        own = [r for r in everything if r.market == market]
        twice = [(a, b) for a in own for b in own if a.run_id < b.run_id and overlap(a, b)]
        assert not twice, f"market {market} ran two runs at once: {twice}"
    assert comparable_release_state(cluster.deployment.paths) == comparable_release_state(embedded)


def test_a_killed_worker_s_run_is_retried_on_the_other_worker(settled, embedded, cluster, instance):
    client = DagsterGraphQLClient("127.0.0.1", port_number=cluster.settings.webserver_port)
    run_id = client.submit_job_execution("factory_row_job", tags=_row_tags(KILLED_MARKET))
    worker = _worker_once_a_step_runs(instance, run_id, timeout=180)
    cluster.table.kill(worker.partition("@")[0])

    def retried(runs) -> bool:
        return any(r.market == KILLED_MARKET and r.retry == "1" and r.status == SUCCESS for r in runs)

    runs = wait_for(instance, retried, timeout=300)
    killed = next(r for r in runs if r.run_id == run_id)
    assert killed.status == dg.DagsterRunStatus.FAILURE, killed
    failure = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
    assert failure and "lost" in (failure[-1].event_log_entry.message or ""), "not failed by the monitor"
    (retry,) = [r for r in runs if r.run_id in _children(instance, run_id)]
    assert retry.status == SUCCESS and retry.worker not in (None, worker), (worker, retry)
    paths = cluster.deployment.paths
    assert comparable_release_state(paths) == comparable_release_state(embedded)
    assert not leftover_temp_files(paths.releases, paths.models), "a half-written file was left"


def test_redis_down_is_named_while_postgres_answers(cluster):
    password_env = "FACTORY_TEST_PG_PASSWORD"
    live = cluster.settings
    settings = DistributedSettings.model_validate(
        {
            "postgres": {**live.postgres.model_dump(), "local": False, "password_env": password_env},
            "redis": {"local": False, "port": free_port()},
        }
    )
    environ = {password_env: cluster.layout.postgres_password.read_text(encoding="utf-8").strip()}
    with pytest.raises(services.ServiceError) as raised:
        services.require(settings, cluster.layout, environ)
    message = str(raised.value)
    assert f"Redis at 127.0.0.1:{settings.redis.port}" in message, message
    assert "PostgreSQL" not in message, f"PostgreSQL answers, yet it is named:\n{message}"


def _worker_once_a_step_runs(instance: dg.DagsterInstance, run_id: str, timeout: float) -> str:
    """The Celery worker of `run_id`, as soon as one of the run's steps has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records
        run = instance.get_run_by_id(run_id)
        if started and run is not None and run.status == dg.DagsterRunStatus.STARTED:
            worker = instance.run_launcher.worker_of(run)
            if worker:
                return worker
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} started no step within {timeout:.0f} s")


def _row_tags(market: str) -> dict[str, str]:
    """The tags of a market's row run (the deployment's row is its one cell)."""
    cell = f"{market}|{MODEL}"
    return {
        "dagster/asset_partition_range_start": cell,
        "dagster/asset_partition_range_end": cell,
        "factory/market": market,
    }


def _children(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    group = instance.get_run_group(run_id)
    return {run.run_id for run in (group[1] if group else []) if run.parent_run_id == run_id}
