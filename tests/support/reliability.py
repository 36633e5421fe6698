"""Shared helpers of the reliability tests: a small released market, fingerprints, a hookable runner.

The released market is one demo market (`rb`, 1,500 customers, 9 monthly snapshots) carried through
ingest, preparation, training, the champion decision, scoring and release for the `churn` cell: the
smallest set-up that trains a real model and publishes a real release. It is built once per test
session (`cached_clean_build`) and copied by each test that damages it.

Run as a script, this module is the child process of the crash and concurrency tests:
`python tests/support/reliability.py run <data_dir> [--market M] [--hook NAME --marker PATH]` ingests
the market and runs its cell to release; a hook makes the child stop at a chosen point of a real
write (inside the warehouse transaction, after the artefact is saved, before the manifest swap),
write the marker file and sleep there, so the test can `kill -9` it mid-write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from factory_assets import factory, ingest, prepare, release
from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import DemoConfig, add_months, write_landing
from resources import build_resources
from resources.landing import LandingResource

MARKET = "rb"
MODEL = "churn"
CUSTOMERS = 1500
MONTHS = 9
START = dt.date(2025, 1, 1)
SEED = 3
NEXT_MONTH = add_months(START, MONTHS)
"""The snapshot after the built window: where a faulty new file lands."""
ROW_ASSETS = [*prepare.ASSETS, *factory.ASSETS, release.released_scores]
LINEAGE = ["_run_id", "_written_at"]
PAUSE_SECONDS = 600


def demo_config(markets: tuple[str, ...] = (MARKET,), months: int = MONTHS) -> DemoConfig:
    """The small, seeded demo CAR of the reliability tests."""
    return DemoConfig(markets=dict.fromkeys(markets, CUSTOMERS), months=months, start=START, seed=SEED)


def factory_resources(paths: FactoryPaths) -> dict[str, object]:
    """The factory's resources over `paths`, with files considered settled at once."""
    resources = build_resources(paths.data_dir)
    resources["landing"] = LandingResource(landing_dir=str(paths.landing), settle_seconds=0)
    return resources


def new_instance(markets: tuple[str, ...] = (MARKET,)) -> dg.DagsterInstance:
    """An ephemeral instance that knows the markets (use it as a context manager)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("markets", list(markets))
    return instance


def run_ingest(paths: FactoryPaths, instance: dg.DagsterInstance, market: str = MARKET):
    """Materialise `car_snapshots` (and Data Checker 1) for one market; failures are returned."""
    return dg.materialize(
        ingest.ASSETS,
        instance=instance,
        resources=factory_resources(paths),
        partition_key=market,
        raise_on_error=False,
    )


def run_cell(paths: FactoryPaths, instance: dg.DagsterInstance, market: str = MARKET, model: str = MODEL):
    """Materialise one cell from `training_frame` to `released_scores`; failures are returned."""
    return dg.materialize(
        ROW_ASSETS,
        instance=instance,
        resources=factory_resources(paths),
        partition_key=f"{market}|{model}",
        raise_on_error=False,
    )


def build_released_market(data_dir: Path, market: str = MARKET) -> FactoryPaths:
    """Land the demo CAR of `market` and run it to a release of its `churn` cell."""
    paths = FactoryPaths(data_dir)
    write_landing(demo_config((market,)), paths.landing)
    with new_instance((market,)) as instance:
        assert run_ingest(paths, instance, market).success, f"ingest of {market} failed"
        result = run_cell(paths, instance, market)
    if not result.success:
        status = paths.warehouses().union().query("select stage, status, message from ops.cell_status")
        raise AssertionError(f"the clean build of {market}/{MODEL} failed:\n{status.to_string()}")
    return paths


def cached_clean_build(base: Path, market: str = MARKET) -> FactoryPaths:
    """`build_released_market` once per test session (under `base`), shared by the test modules."""
    target = base / f"reliability_clean_{market}"
    base.mkdir(parents=True, exist_ok=True)
    with (base / f".reliability_clean_{market}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "done").exists():
            shutil.rmtree(target, ignore_errors=True)
            build_released_market(target / "data", market)
            (target / "done").write_text("ok", encoding="utf-8")
    return FactoryPaths(target / "data")


def copy_factory(source: FactoryPaths, target_dir: Path) -> FactoryPaths:
    """A full copy of a factory data directory (warehouse, landing, models, releases, reports)."""
    shutil.copytree(source.data_dir, target_dir)
    return FactoryPaths(target_dir)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file under `root` (relative path -> sha256); empty when `root` does not exist."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def release_state(paths: FactoryPaths) -> dict[str, object]:
    """What consumers can see: every manifest's JSON and the hash of every release file."""
    manifests = {
        str(p.relative_to(paths.releases)): json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(paths.releases.rglob("current.json"))
    }
    return {"manifests": manifests, "files": tree_hashes(paths.releases)}


def comparable_release_state(paths: FactoryPaths) -> dict[str, object]:
    """`release_state` without the release time, which differs between two equal runs."""
    state = release_state(paths)
    for manifest in state["manifests"].values():
        manifest.pop("released_at", None)
    manifests = ("current.json", ".manifest.json")  # a kept manifest holds its release time too
    state["files"] = {k: v for k, v in state["files"].items() if not k.endswith(manifests)}
    return state


def table_rows(
    warehouse: Warehouse, table: str, columns: str, order: str, where: str = "true"
) -> list[tuple]:
    """Rows of `table` as tuples (empty when the table does not exist), for equality checks."""
    if not warehouse.table_exists(table):
        return []
    frame = warehouse.query(f"select {columns} from {table} where {where} order by {order}")
    return [tuple("<NA>" if pd.isna(v) else str(v) for v in row) for row in frame.itertuples(index=False)]


def outcome_state(paths: FactoryPaths, market: str = MARKET) -> dict[str, object]:
    """The durable outcome of a run, without times, run ids and random ids: what must equal a clean run."""
    wh = paths.warehouses().union()
    car_columns = "* exclude (_run_id, _written_at, _source_file)"  # the source path names the directory
    return {
        "car": table_rows(wh, f"car.{market}", car_columns, "snapshot_date, customer_id"),
        "car_files": table_rows(
            wh,
            "ops.car_files",
            "market, snapshot_date, content_hash, status",
            "market, snapshot_date, status",
        ),
        "models": table_rows(
            wh,
            Table.MODELS,
            "market, model, model_version, test_auc, beta, reference_sha256",
            "model_version",
        ),
        # a rerun on the same data may log another 'keep' (the retrain triggers are evaluated again);
        # what must match is every decision that changed the champion, hence the live version
        "champion_changes": table_rows(
            wh,
            Table.DECISIONS,
            "market, model, outcome, challenger_version, live_version",
            "decided_at",
            "outcome in ('promote', 'replace')",
        ),
        "releases": table_rows(
            wh, Table.RELEASES, "market, model, release_id, status, rows, sha256", "released_at"
        ),
        "artefacts": sorted(p.name for p in paths.models.glob("*") if not p.name.startswith(".")),
        "release_files": comparable_release_state(paths),
    }


# ---- the child process of the crash and concurrency tests ----------------------------------------


def _pause(marker: Path) -> None:
    marker.write_text("paused", encoding="utf-8")
    time.sleep(PAUSE_SECONDS)


class _PausingConnection:
    """A DuckDB connection that pauses right after a statement matching `needle` (inside its transaction)."""

    def __init__(self, con, needle: str, marker: Path) -> None:
        self._con, self._needle, self._marker = con, needle, marker

    def execute(self, sql, *args, **kwargs):
        result = self._con.execute(sql, *args, **kwargs)
        if self._needle in str(sql).lower():
            _pause(self._marker)
        return result

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def _pause_in_sql(needle: str, marker: Path) -> None:
    original = Warehouse._connect_with_retry

    def connect(self: Warehouse):
        return _PausingConnection(original(self), needle, marker)

    Warehouse._connect_with_retry = connect


def _pause_after(owner: type, name: str, marker: Path, before: bool = False) -> None:
    original: Callable = getattr(owner, name)

    def wrapped(*args, **kwargs):
        if before:
            _pause(marker)
        result = original(*args, **kwargs)
        _pause(marker)
        return result

    setattr(owner, name, wrapped)


def install_hook(hook: str, marker: Path) -> None:
    """Make this process stop (and sleep) at `hook`, after writing `marker`."""
    from factory_assets.core.model.store import ModelStore
    from factory_assets.core.release.store import ReleaseStore

    if hook == "car-insert":
        _pause_in_sql("insert into car.", marker)
    elif hook == "registry-insert":
        _pause_in_sql("insert into registry.models", marker)
    elif hook == "model-saved":
        _pause_after(ModelStore, "save", marker)
    elif hook == "release-swap":
        _pause_after(ReleaseStore, "swap_manifest", marker, before=True)
    elif hook == "release-recorded":
        _pause_after(ReleaseStore, "swap_manifest", marker)
    else:
        raise ValueError(f"unknown hook '{hook}'")


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="support/reliability.py")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--market", default=MARKET)
    parser.add_argument("--hook")
    parser.add_argument("--marker", type=Path)
    args = parser.parse_args(argv)
    # lock waits are logged at INFO: the concurrency test counts them in this process's output
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.hook:
        install_hook(args.hook, args.marker)
    paths = FactoryPaths(args.data_dir)
    with new_instance((args.market,)) as instance:
        if not run_ingest(paths, instance, args.market).success:
            print(f"ingest of {args.market} failed", file=sys.stderr)
            return 1
        if not run_cell(paths, instance, args.market).success:
            print(f"cell {args.market}/{MODEL} failed", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
