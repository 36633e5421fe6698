"""Crash safety: `kill -9` the factory mid-write, rerun, and end where a clean run ends.

One data directory lives through a chain of crashes. Each step starts the real factory in a child
process (`support/reliability.py run`, ingest then the `rb/churn` cell to release) with a hook that
stops it at one write: inside the warehouse transaction that inserts a CAR snapshot, inside the one
that registers the trained model, just before the release manifest is swapped, and just after it
(before the release ledger row). The test waits for the hook's marker file and kills the process
group with SIGKILL. After each kill the durable state must be the state before the interrupted write
(no half snapshot, no registry row without its transaction, no manifest naming missing files); a
final rerun without hook must end with tables, registry, artefacts and release files equal to those
of a clean, uninterrupted run. A reader thread polls the manifest throughout and verifies every
release it sees against its sha256: it must never see a partial release.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.reliability import (
    MARKET,
    MODEL,
    cached_clean_build,
    demo_config,
    outcome_state,
)

from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.store import ReleaseStore
from factory_assets.demo.car import write_landing

HELPER = Path(__file__).parents[1] / "support" / "reliability.py"
MARKER_TIMEOUT = 240
HOOKS = ["car-insert", "registry-insert", "release-swap", "release-recorded"]


class ManifestPoller(threading.Thread):
    """Reads the cell's manifest in a loop and verifies the release it names, as a consumer would."""

    def __init__(self, paths: FactoryPaths) -> None:
        super().__init__(daemon=True)
        self.store = ReleaseStore(paths.releases)
        self.stop = threading.Event()
        self.reads = 0
        self.seen: set[str | None] = set()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                manifest = self.store.read_manifest(MARKET, MODEL)
                if manifest is not None:
                    self.store.load_release(manifest)
                    self.store.load_reference(manifest)
                self.seen.add(manifest.release_id if manifest else None)
            except Exception as exc:  # every failure is a partial release seen by a consumer
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.reads += 1
            time.sleep(0.01)


def _child(paths: FactoryPaths, hook: str | None = None, marker: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, str(HELPER), "run", str(paths.data_dir)]
    if hook:
        command += ["--hook", hook, "--marker", str(marker)]
    log = (paths.data_dir.parent / f"child-{hook or 'clean'}.log").open("wb")
    return subprocess.Popen(
        command, cwd=HELPER.parent.parent, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _log(paths: FactoryPaths, hook: str | None) -> str:
    text = (paths.data_dir.parent / f"child-{hook or 'clean'}.log").read_text(
        encoding="utf-8", errors="replace"
    )
    return text[-3000:]


def kill_at(paths: FactoryPaths, hook: str) -> None:
    """Run the factory until it reaches `hook`, then SIGKILL its whole process group."""
    marker = paths.data_dir.parent / f"{hook}.marker"
    child = _child(paths, hook, marker)
    deadline = time.monotonic() + MARKER_TIMEOUT
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(
                f"the child ended (rc {child.returncode}) before '{hook}':\n{_log(paths, hook)}"
            )
        if time.monotonic() > deadline:
            os.killpg(child.pid, signal.SIGKILL)
            raise AssertionError(f"'{hook}' not reached in {MARKER_TIMEOUT} s:\n{_log(paths, hook)}")
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def _state_after_kill(paths: FactoryPaths) -> dict[str, object]:
    wh = paths.warehouses().union()
    count = lambda table, where="true": (  # noqa: E731
        int(wh.query(f"select count(*) from {table} where {where}").iloc[0, 0])
        if wh.table_exists(table)
        else 0
    )
    return {
        "car_rows": count(f"car.{MARKET}"),
        "car_snapshots": count("ops.car_files", "status = 'ingested'"),
        "models": count(Table.MODELS),
        "decisions": count(Table.DECISIONS),
        "released": count(Table.RELEASES, "status = 'released'"),
        "ledger": count(Table.RELEASES),
        "manifest": ReleaseStore(paths.releases).read_manifest(MARKET, MODEL),
        "artefacts": sorted(p.name for p in paths.models.glob("*.cbm")) if paths.models.exists() else [],
    }


@pytest.fixture(scope="module")
def crash_chain(tmp_path_factory):
    clean = cached_clean_build(tmp_path_factory.getbasetemp())
    paths = FactoryPaths(tmp_path_factory.mktemp("crash") / "data")
    write_landing(demo_config(), paths.landing)
    poller = ManifestPoller(paths)
    poller.start()
    after: dict[str, dict[str, object]] = {}
    try:
        for hook in HOOKS:
            kill_at(paths, hook)
            after[hook] = _state_after_kill(paths)
        child = _child(paths)
        rc = child.wait(timeout=600)
        assert rc == 0, f"the rerun after the crashes failed (rc {rc}):\n{_log(paths, None)}"
        time.sleep(0.2)
    finally:
        poller.stop.set()
        poller.join(timeout=10)
    return {"clean": clean, "paths": paths, "after": after, "poller": poller}


def test_kill_inside_the_car_insert_leaves_no_partial_snapshot(crash_chain):
    state = crash_chain["after"]["car-insert"]
    assert state["car_rows"] == 0, "the killed transaction's rows must not be visible"
    assert state["car_snapshots"] == 0, "no snapshot may be marked ingested by a killed transaction"


def test_kill_inside_model_registration_leaves_no_registry_row(crash_chain):
    state = crash_chain["after"]["registry-insert"]
    assert state["car_snapshots"] == 9 and state["car_rows"] > 0, "the second run ingested every snapshot"
    assert state["models"] == 0, "the killed registration must not be visible"
    assert state["decisions"] == 0
    assert state["manifest"] is None
    assert len(state["artefacts"]) == 1, "the artefact was saved (content-addressed) before registration"


def test_kill_before_the_manifest_swap_releases_nothing(crash_chain):
    state = crash_chain["after"]["release-swap"]
    assert state["models"] == 1 and state["decisions"] == 1, "the third run registered and decided"
    assert state["manifest"] is None, "the release files were written but no manifest names them"
    assert state["released"] == 0


def test_kill_after_the_manifest_swap_serves_the_whole_release(crash_chain):
    state = crash_chain["after"]["release-recorded"]
    manifest = state["manifest"]
    assert manifest is not None, "the swap completed before the kill"
    ReleaseStore(crash_chain["paths"].releases).load_release(manifest)  # verified against its sha256


def test_rerun_after_the_crashes_equals_a_clean_run(crash_chain):
    crashed, clean = outcome_state(crash_chain["paths"]), outcome_state(crash_chain["clean"])
    for key in clean:
        assert crashed[key] == clean[key], f"{key} differs from the clean run after crash recovery"


def test_a_polling_reader_never_sees_a_partial_release(crash_chain):
    poller = crash_chain["poller"]
    assert poller.errors == [], poller.errors[:3]
    assert poller.reads > 100
    final = ReleaseStore(crash_chain["paths"].releases).read_manifest(MARKET, MODEL)
    assert poller.seen == {None, final.release_id}


PUBLISHER = """
import datetime as dt, sys
from pathlib import Path
import numpy as np, pandas as pd
from factory_assets.core.release.publish import publish
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.specs import OutputSpec
store, marker = ReleaseStore(Path(sys.argv[1])), Path(sys.argv[2])
for k in range(100_000):
    probability = np.random.default_rng(k).random(3000)
    rank = probability.argsort().argsort() + 1
    frame = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(3000)],
        "snapshot_date": dt.date(2026, 1, 1), "probability": probability,
        "percentile": 100.0 * rank / 3000, "decile": 10 - (rank - 1) * 10 // 3000, "model_version": f"v{k}"})
    publish(store, "rb", "churn", frame, OutputSpec(format="both", csv=True), dt.datetime(2026, 1, 2))
    if k == 3:
        marker.write_text("publishing", encoding="utf-8")
"""


def test_a_reader_sees_whole_releases_while_a_publisher_swaps_and_is_killed(tmp_path):
    """Releases replace each other in a loop (old -> new, the case a consumer meets daily) until kill -9."""
    paths, marker = FactoryPaths(tmp_path / "data"), tmp_path / "publishing"
    poller = ManifestPoller(paths)
    poller.start()
    child = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(paths.releases), str(marker)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + MARKER_TIMEOUT
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the publisher never got going"
            time.sleep(0.05)
        time.sleep(2.0)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        time.sleep(0.2)
        poller.stop.set()
        poller.join(timeout=10)
    assert poller.errors == [], poller.errors[:3]
    assert len(poller.seen - {None}) >= 3, f"only {len(poller.seen)} releases seen in {poller.reads} reads"
    store = ReleaseStore(paths.releases)
    store.load_release(store.read_manifest(MARKET, MODEL))  # the release in force after the kill is whole
