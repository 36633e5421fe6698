"""Command line: run the demo factory end to end, land a drift month, print the status grid.

`python -m factory_assets.cli demo` is what `make run` calls. It generates the demo CAR into the
landing folder, then lets the real Dagster daemon do the rest with nobody clicking: the landing
sensor ingests each market, Data Checker 1 gates it, a chained run carries the market's row of
models from preparation to release, and the status grid is rebuilt. It then lands one more month
with injected drift in one market and waits for the same automated path to retrain and decide.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from factory_assets.core.names import Table
from factory_assets.core.paths import DEFAULT_DATA_DIR, REPO_ROOT, FactoryPaths
from factory_assets.core.status.grid import format_status_table
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import (
    DemoConfig,
    generate_market,
    snapshot_path,
    write_landing,
    write_snapshot,
)

log = logging.getLogger("factory")
DEMO_MARKETS = {"uk": 12_000, "de": 8_000, "it": 5_000}
DEMO_MONTHS = 18
DRIFT_MARKET = "uk"
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
INSTANCE_YAML = """\
run_queue:
  max_concurrent_runs: 2
telemetry:
  enabled: false
"""


def _paths() -> FactoryPaths:
    return FactoryPaths(Path(os.environ.get("FACTORY_DATA_DIR", str(DEFAULT_DATA_DIR))))


def _dagster_home() -> Path:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise SystemExit("DAGSTER_HOME is not set (make run sets it to .dagster_home)")
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML, encoding="utf-8")
    return path


def land_demo_car(paths: FactoryPaths, config: DemoConfig) -> bool:
    """Write the demo CAR once; a marker makes a second `make run` reuse the same files."""
    marker = paths.landing / ".demo_config.json"
    wanted = json.dumps({"markets": config.markets, "months": config.months, "seed": config.seed})
    if marker.exists() and marker.read_text(encoding="utf-8") == wanted:
        return False
    files = write_landing(config, paths.landing)
    marker.write_text(wanted, encoding="utf-8")
    log.info("landed %d demo CAR files in %s", len(files), paths.landing)
    return True


def land_drift_month(paths: FactoryPaths, base: DemoConfig, market: str) -> bool:
    """Land the month after the demo window for `market` with drift; False if already landed."""
    drift_start = base.start + pd.DateOffset(months=base.months)
    config = DemoConfig(
        markets={market: base.markets[market]},
        months=base.months + 1,
        start=base.start,
        seed=base.seed,
        drift_from=drift_start.date(),
        drift_markets=(market,),
    )
    *_, (snapshot, frame) = generate_market(config, market)
    target = snapshot_path(paths.landing, market, snapshot, "parquet")
    if target.exists():
        return False
    write_snapshot(frame, target)
    log.info("landed drift month %s for %s", snapshot, market)
    return True


class Daemon:
    """The real `dagster-daemon` (sensors, schedules, run queue) as a child process."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("ab")
        daemon = Path(sys.executable).parent / "dagster-daemon"
        command = [str(daemon), "run", "-w", str(REPO_ROOT / "workspace.yaml")]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def alive(self) -> bool:
        """True while the daemon process runs."""
        return self.process is not None and self.process.poll() is None


def wait_for_quiet(
    instance: dg.DagsterInstance, daemon: Daemon, since: float, expect: int, timeout: float
) -> list[dg.DagsterRun]:
    """Wait until at least `expect` runs started after `since` and none is still active."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise RuntimeError(f"dagster-daemon exited; see {daemon.log_path}")
        runs = [r for r in instance.get_runs(limit=500) if _created(instance, r) >= since]
        active = [r for r in runs if r.status in ACTIVE]
        if len(runs) >= expect and not active:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 25:  # one more sensor interval: chained runs start
                return runs
        else:
            quiet_since = None
        time.sleep(2)
    raise TimeoutError(f"the factory did not settle within {timeout:.0f} s; see {daemon.log_path}")


def _created(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float:
    record = instance.get_run_record_by_id(run.run_id)
    return record.create_timestamp.timestamp() if record else 0.0


def print_runs(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    """One line per run, oldest first: job, partition or market, status."""
    for run in sorted(runs, key=lambda r: _created(instance, r)):
        scope = run.tags.get("dagster/partition") or run.tags.get("factory/market", "")
        print(f"  {run.job_name:<22} {scope:<10} {run.status.value}")


def print_status(paths: FactoryPaths) -> None:
    """Print the market x model grid stored by `factory_status`."""
    warehouse = Warehouse(paths.warehouse)
    if not warehouse.table_exists(Table.FACTORY_STATUS):
        print("no status grid yet")
        return
    print(format_status_table(warehouse.query("select * from ops.factory_status")))


def print_decisions(paths: FactoryPaths, market: str) -> None:
    """The champion decisions of one market, newest first."""
    warehouse = Warehouse(paths.warehouse)
    frame = warehouse.query(
        "select model, decided_at, outcome, reason from registry.decisions "
        "where market = ? order by decided_at desc",
        [market],
    )
    print(frame.to_string(index=False))


def demo(args: argparse.Namespace) -> None:
    """Run the whole demo: land CAR data, let the daemon run the factory, then a drift month."""
    paths = _paths()
    instance_home = _dagster_home()
    config = DemoConfig(markets=DEMO_MARKETS, months=args.months, seed=args.seed)
    fresh = land_demo_car(paths, config)
    with dg.DagsterInstance.get() as instance, Daemon(instance_home / "daemon.log") as daemon:
        print(f"== Factory: {len(config.markets)} markets, daemon running (log {daemon.log_path})")
        started = time.time()
        expected = 3 * len(config.markets) if fresh else 0
        runs = wait_for_quiet(instance, daemon, started, expected, args.timeout)
        print_runs(instance, runs)
        print_status(paths)
        started = time.time()
        landed = land_drift_month(paths, config, DRIFT_MARKET)
        print(f"== Drift month {'lands' if landed else 'already landed'} in '{DRIFT_MARKET}'")
        runs = wait_for_quiet(instance, daemon, started, 3 if landed else 0, args.timeout)
        print_runs(instance, runs)
    print_decisions(paths, DRIFT_MARKET)
    print_status(paths)
    print(f"Status page: {paths.reports / 'status.html'}   UI: make ui   API: make serve")


def retention(args: argparse.Namespace) -> None:
    """Show (and with --apply, carry out) the retention plan; run it while no factory run is active."""
    from factory_assets.core.release.retention import RetentionPolicy, apply_retention, plan_retention
    from factory_assets.specs_registry import SPECS

    paths = _paths()
    policy = RetentionPolicy(car_months=args.car_months, keep_releases=args.keep_releases)
    plan = plan_retention(paths, SPECS, policy)
    print(json.dumps(plan.summary(), indent=2))
    if args.apply:
        print(json.dumps(apply_retention(paths, plan), indent=2))
    else:
        print("dry run: nothing deleted (add --apply)")


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="factory")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="run the demo factory end to end")
    run.add_argument("--months", type=int, default=DEMO_MONTHS)
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--timeout", type=float, default=1800)
    run.set_defaults(func=demo)
    prune = sub.add_parser("retention", help="prune old snapshots, artefacts and releases")
    prune.add_argument("--car-months", type=int, default=36)
    prune.add_argument("--keep-releases", type=int, default=3)
    prune.add_argument("--apply", action="store_true", help="delete; without it, only show the plan")
    prune.set_defaults(func=retention)
    status = sub.add_parser("status", help="print the status grid")
    status.set_defaults(func=lambda _: print_status(_paths()))
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
