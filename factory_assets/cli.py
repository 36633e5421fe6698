"""Command line: run the demo factory end to end, land a drift month, print the status grid.

`python -m factory_assets.cli demo` is what `make run` calls. It generates the demo CAR into the
landing folder, then lets the real Dagster daemon do the rest with nobody clicking: the landing
sensor ingests each market, Data Checker 1 gates it, a chained run carries the market's row of
models from preparation to release, and the status grid is rebuilt. It then lands one more month
with injected drift in one market and waits for the same automated path to retrain and decide.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from factory_assets import deployment, profiles
from factory_assets.cluster.commands import add_distributed_commands, attach, running_daemon
from factory_assets.core.car.external import load_external_mapping
from factory_assets.core.clock import utc_now
from factory_assets.core.names import Table
from factory_assets.core.paths import REPO_ROOT, FactoryPaths
from factory_assets.core.release.interventions import (
    InterventionError,
    Request,
    override_release,
    withdraw_release,
)
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.stage import StageContext
from factory_assets.core.status.grid import format_status_table
from factory_assets.demo.car import (
    DemoConfig,
    generate_market,
    snapshot_path,
    write_landing,
    write_snapshot,
)
from factory_assets.demo.insurer import InsurerConfig, write_insurer_export
from factory_assets.init_deployment import InitError, init_deployment
from resources import build_resources

if TYPE_CHECKING:
    from factory_assets.cluster.control import ClusterDaemon

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


def _paths() -> FactoryPaths:
    return deployment.current().paths


def _dagster_home() -> Path:
    """The instance's home: DAGSTER_HOME (embedded), or the distributed profile's, brought up if needed."""
    current = deployment.current()
    if current.profile == "distributed":
        return attach(current)
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise SystemExit("DAGSTER_HOME is not set (make run sets it to .dagster_home)")
    return profiles.write_embedded_home(Path(home))


def _daemon(instance_home: Path) -> Daemon | ClusterDaemon:
    """A daemon of this process's own (embedded), or the distributed profile's running one."""
    current = deployment.current()
    if current.profile == "distributed":
        return running_daemon(current)
    return Daemon(instance_home / "daemon.log")


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
    warehouse = paths.warehouses().union()
    if not warehouse.table_exists(Table.FACTORY_STATUS):
        print("no status grid yet")
        return
    print(format_status_table(warehouse.query(f"select * from {Table.FACTORY_STATUS}")))


def print_decisions(paths: FactoryPaths, market: str) -> None:
    """The champion decisions of one market, newest first."""
    warehouse = paths.warehouses().market(market)
    if not warehouse.table_exists(Table.DECISIONS):
        print(f"no decisions recorded for market '{market}'")
        return
    frame = warehouse.query(
        f"select model, decided_at, outcome, reason from {Table.DECISIONS} "
        "where market = ? order by decided_at desc",
        [market],
    )
    print(frame.to_string(index=False))


def run_factory(paths: FactoryPaths, expected: int, timeout: float) -> None:
    """Let the real daemon run the deployment until quiet (at least `expected` runs), print the grid."""
    instance_home = _dagster_home()
    with dg.DagsterInstance.get() as instance, _daemon(instance_home) as daemon:
        print(f"== Factory: daemon running (log {daemon.log_path})")
        runs = wait_for_quiet(instance, daemon, time.time(), expected, timeout)
        print_runs(instance, runs)
    print_status(paths)


def demo(args: argparse.Namespace) -> None:
    """Run the whole demo: land CAR data, let the daemon run the factory, then a drift month."""
    paths = _paths()
    config = DemoConfig(markets=DEMO_MARKETS, months=args.months, seed=args.seed)
    fresh = land_demo_car(paths, config)
    # after the landing: a running daemon (the distributed profile's) would ingest half-landed markets
    instance_home = _dagster_home()
    with dg.DagsterInstance.get() as instance, _daemon(instance_home) as daemon:
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


def deployment_markets(current: deployment.Deployment) -> list[str]:
    """Every market with data in the deployment's sources (landing folder and external CARs)."""
    landing = build_resources(deployment=current)["landing"]
    markets = set(landing.folder().scan().markets())
    for source in landing.external_sources():
        markets |= set(source.markets())
    return sorted(markets)


def run_once(current: deployment.Deployment) -> bool:
    """Every market's ingest and row run, then the status grid, in this process (no daemon).

    The same jobs the sensors launch, on the instance `DAGSTER_HOME` names. True if every run
    succeeded.
    """
    # Imported here: they load the deployment the environment names, which `--project` sets.
    from factory_assets.definitions import defs
    from factory_assets.jobs import row_tags
    from factory_assets.partitions import check_market, markets_partitions

    markets = [check_market(m, "factory once") for m in deployment_markets(current)]
    ok = True
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(markets_partitions.name, markets)
        for market in markets:
            job = defs.get_job_def("car_ingest_job")
            ingest = job.execute_in_process(instance=instance, partition_key=market, raise_on_error=False)
            print(f"  car_ingest_job         {market:<10} {ingest.dagster_run.status.value}")
            if not ingest.success:
                ok = False
                continue
            row = defs.get_job_def("factory_row_job").execute_in_process(
                instance=instance, tags=row_tags(market), raise_on_error=False
            )
            print(f"  factory_row_job        {market:<10} {row.dagster_run.status.value}")
            ok = ok and row.success
        defs.get_job_def("factory_status_job").execute_in_process(instance=instance, raise_on_error=False)
    print_status(current.paths)
    return ok


def once(args: argparse.Namespace) -> None:
    """Run the deployment's markets once, in process; exit 1 if a run failed."""
    _dagster_home()
    if not run_once(deployment.current()):
        raise SystemExit(1)


def insurer(args: argparse.Namespace) -> None:
    """The insurer example: write its seeded export where its mapping points, then run it once."""
    current = deployment.current()
    config = InsurerConfig(seed=args.seed)
    (mapping,) = [load_external_mapping(p) for p in current.external_mappings]
    write_insurer_export(mapping.path.parent, config)
    log.info("wrote the insurer export %s", mapping.path)
    _dagster_home()
    ok = run_once(current)
    print(f"Status page: {current.paths.reports / 'status.html'}")
    if not ok:
        raise SystemExit(1)


def init(args: argparse.Namespace) -> None:
    """Inspect a CAR export and write a starting deployment folder (nothing is overwritten)."""
    try:
        report = init_deployment(args.folder, args.car)
    except InitError as exc:
        raise SystemExit(f"factory init: {exc}") from exc
    print("\n".join(report))
    print(f"Next: review {args.folder / 'config'}, then: make run-once PROJECT={args.folder}")


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


def _operator_action(args: argparse.Namespace, action: str) -> None:
    """Carry out an override or a withdrawal on one cell of the deployment and print its record."""
    current = deployment.current()
    paths = current.paths
    if args.model not in current.specs:
        known = sorted(current.specs)
        raise SystemExit(f"factory {action}: model '{args.model}' has no spec; known: {known}")
    ctx = StageContext(
        paths.warehouses().market(args.market),
        paths.models,
        paths.reports,
        paths.releases,
        run_id=f"cli-{action}",
    )
    try:
        request = Request(args.market, args.model, args.by, args.reason)
        if action == "release-override":
            spec = current.spec_for(current.specs[args.model], args.market)
            outcome = override_release(ctx, spec, request, args.attempt)
        else:
            outcome = withdraw_release(ctx, request, args.release)
    except InterventionError as exc:
        raise SystemExit(f"factory {action}: {exc}") from exc
    record = outcome.record
    serving = outcome.in_force.release_id if outcome.in_force else "nothing"
    print(f"{record.market}/{record.model}: {record.status} ({record.release_id}) by {record.operator}")
    print(f"  reason: {record.reason}")
    for result in outcome.overridden:
        print(f"  overrode {result.check}: {result.detail}")
    print(f"  now serving: {serving}   (the grid shows it after the next factory_status run)")


def _add_operator_commands(sub: argparse._SubParsersAction) -> None:
    """`release-override` and `withdraw-release`: the recorded way out of a held-back or bad release."""
    for action, text in [
        ("release-override", "release a held-back cell's scores despite Data Checker 2 (recorded)"),
        ("withdraw-release", "withdraw a cell's release in force; the previous one is served (recorded)"),
    ]:
        command = sub.add_parser(action, help=text)
        command.add_argument("--market", required=True)
        command.add_argument("--model", required=True)
        command.add_argument("--reason", required=True, help="why (kept in the release ledger)")
        command.add_argument("--by", default=getpass.getuser(), help="who decides (default: your user name)")
        if action == "release-override":
            command.add_argument("--attempt", help="the held-back id you reviewed (refused if it changed)")
        else:
            command.add_argument("--release", help="the release you mean (refused if another is in force)")
        command.set_defaults(func=lambda args, action=action: _operator_action(args, action))


def api_key(args: argparse.Namespace) -> None:
    """Create a scoring-API key (printed once; only its salted hash is stored) or list the stored ones."""
    from serving.keys import KeyFileError, add_key, read_keys

    current = deployment.current()
    path = current.api_keys_file
    if args.action == "create":
        try:
            key, entry = add_key(path, args.name, args.market or [], utc_now())
        except KeyFileError as exc:
            raise SystemExit(f"factory api-key create: {exc}") from exc
        print(f"API key {entry.key_id} ({entry.name}), reads {entry.scope}; stored hashed in {path}")
        print("Shown once, keep it now (send it as the X-API-Key header):")
        print(key)
        return
    keys = read_keys(path)
    for entry in keys.values():
        print(f"{entry.key_id}  {entry.name}  reads {entry.scope}  created {entry.created_at}")
    if not keys:
        print(f"No API key yet in {path}: every data request will get 401.")
    print("Create a key: python -m factory_assets.cli api-key create --name <who> [--market <market> ...]")
    if current.settings.api.reports_public:
        print("Report pages under /reports/ open without a key (api.reports_public in config/factory.yaml).")


def restore_reference(args: argparse.Namespace) -> None:
    """Write a lost or damaged `.reference.parquet` of a cell's release in force again, and say how."""
    from factory_assets.core.release.recovery import ReferenceRecoveryError, restore_reference

    paths = _paths()
    try:
        outcome = restore_reference(
            ReleaseStore(paths.releases), paths.warehouses().market(args.market), args.market, args.model
        )
    except ReferenceRecoveryError as exc:
        raise SystemExit(f"factory restore-reference: {exc}") from exc
    print(f"{args.market}/{args.model}: {outcome}")


def migrate_warehouse(_: argparse.Namespace) -> None:
    """Split the one-file warehouse of earlier versions into one file per market."""
    from factory_assets.core.migrate import MigrationError, split_warehouse

    paths = _paths()
    try:
        report = split_warehouse(paths.legacy_warehouse, paths.warehouses_unchecked())
    except MigrationError as exc:
        raise SystemExit(f"factory migrate-warehouse: {exc}") from exc
    for market, tables in report.rows.items():
        print(
            f"{market}: {len(tables)} tables, {sum(tables.values())} rows -> "
            f"{paths.warehouse / market}.duckdb"
        )
    if report.rebuilt:
        print(f"not copied (the preparation stages rebuild them; rerun each market's row): {report.rebuilt}")
    print(f"the old file is kept as {report.kept_as}")


def _add_recovery_commands(sub: argparse._SubParsersAction) -> None:
    """`api-key`, `restore-reference` and `migrate-warehouse`."""
    migrate = sub.add_parser(
        "migrate-warehouse", help="split a one-file warehouse of earlier versions into one file per market"
    )
    migrate.set_defaults(func=migrate_warehouse)
    keys = sub.add_parser("api-key", help="create or list the scoring API's keys (stored hashed)")
    keys.add_argument("action", choices=["create", "list"])
    keys.add_argument("--name", default="", help="who or what uses the key (create)")
    keys.add_argument("--market", action="append", help="limit the key to this market (repeatable)")
    keys.set_defaults(func=api_key)
    restore = sub.add_parser(
        "restore-reference", help="rewrite a lost .reference.parquet of a cell's release in force"
    )
    restore.add_argument("--market", required=True)
    restore.add_argument("--model", required=True)
    restore.set_defaults(func=restore_reference)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="factory")
    parser.add_argument(
        "--project",
        type=Path,
        help=f"the deployment folder (default: ${deployment.PROJECT_ENV}, else the repository root)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="run the demo factory end to end")
    run.add_argument("--months", type=int, default=DEMO_MONTHS)
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--timeout", type=float, default=1800)
    run.set_defaults(func=demo)
    example = sub.add_parser("insurer", help="write the insurer example's export and run it once")
    example.add_argument("--seed", type=int, default=11)
    example.set_defaults(func=insurer)
    single = sub.add_parser("once", help="ingest and run every market of the deployment once, in process")
    single.set_defaults(func=once)
    start = sub.add_parser("init", help="write a commented starting deployment folder from a CAR export")
    start.add_argument("folder", type=Path, help="the new deployment folder")
    start.add_argument("--car", type=Path, required=True, help="a CAR export (Parquet or CSV) to inspect")
    start.set_defaults(func=init)
    prune = sub.add_parser("retention", help="prune old snapshots, artefacts and releases")
    prune.add_argument("--car-months", type=int, default=36)
    prune.add_argument("--keep-releases", type=int, default=3)
    prune.add_argument("--apply", action="store_true", help="delete; without it, only show the plan")
    prune.set_defaults(func=retention)
    status = sub.add_parser("status", help="print the status grid")
    status.set_defaults(func=lambda _: print_status(_paths()))
    _add_operator_commands(sub)
    _add_recovery_commands(sub)
    add_distributed_commands(sub)
    args = parser.parse_args(argv)
    if args.project is not None:
        # The environment, not an argument: the daemon and its code server inherit it.
        os.environ[deployment.PROJECT_ENV] = str(args.project.resolve())
    args.func(args)


if __name__ == "__main__":
    main()
