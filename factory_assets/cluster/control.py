"""Start, stop and inspect the distributed profile on this machine.

`up` brings up, in order: the loopback PostgreSQL and Redis (when the settings say they are local),
a check that both answer, the Celery workers (each a separate process standing for a machine), the
Dagster daemon (sensors, schedules, the run queue, the run monitor, run retries) and the webserver.
It is idempotent: what already runs is left running. `down` stops what `up` started, by pid file.
`worker_command` is what a worker machine runs in the foreground.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from factory_assets.cluster import services
from factory_assets.cluster.processes import ProcessSpec, ProcessTable
from factory_assets.core.paths import REPO_ROOT
from factory_assets.deployment import DATA_ENV, PROFILE_ENV, PROJECT_ENV, Deployment, DistributedSettings
from factory_assets.profiles import CELERY_QUEUE, ClusterLayout, redis_url, write_distributed_home

WORKSPACE = "workspace.yaml"
DAEMON = "daemon"
WEBSERVER = "webserver"
WORKER_PREFIX = "worker-"
READY_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class Cluster:
    """One deployment's distributed profile on this machine: its layout, settings and processes."""

    deployment: Deployment

    @property
    def layout(self) -> ClusterLayout:
        """Where its files are."""
        return ClusterLayout.of(self.deployment)

    @property
    def table(self) -> ProcessTable:
        """Its processes on this machine."""
        return ProcessTable(pids=self.layout.pids, logs=self.layout.logs)

    @property
    def settings(self) -> DistributedSettings:
        """The `distributed` settings of the deployment."""
        return self.deployment.settings.distributed

    def environment(self) -> dict[str, str]:
        """What every factory process of the profile needs: the instance, the deployment, its data."""
        home = str(self.layout.home)
        path = os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH", "")) if p)
        return {
            "DAGSTER_HOME": home,
            "PYTHONPATH": path,  # the workers' `dagster_celery_config` module lives in the home
            PROJECT_ENV: str(self.deployment.root),
            DATA_ENV: str(self.deployment.paths.data_dir),
            PROFILE_ENV: "distributed",
        }

    def worker_spec(self, name: str) -> ProcessSpec:
        """A Celery worker running one whole run at a time; `name` is its node name's prefix."""
        command = [_venv("celery"), "-A", "dagster_celery.app", "worker", "-Q", CELERY_QUEUE]
        command += ["--concurrency=1", "-n", f"{name}@%h", "--loglevel=INFO", "--without-mingle"]
        command += ["--without-gossip"]
        return ProcessSpec(name, command, REPO_ROOT, self.environment())

    def daemon_spec(self) -> ProcessSpec:
        """The Dagster daemon over the factory's workspace."""
        command = [_venv("dagster-daemon"), "run", "-w", str(REPO_ROOT / WORKSPACE)]
        return ProcessSpec(DAEMON, command, REPO_ROOT, self.environment())

    def webserver_spec(self) -> ProcessSpec:
        """The Dagster webserver on 127.0.0.1."""
        command = [_venv("dagster-webserver"), "-w", str(REPO_ROOT / WORKSPACE), "-h", "127.0.0.1"]
        command += ["-p", str(self.settings.webserver_port)]
        return ProcessSpec(WEBSERVER, command, REPO_ROOT, self.environment())

    def workers(self) -> list[str]:
        """The worker processes with a pid file on this machine."""
        return [n for n in self.table.names() if n.startswith(WORKER_PREFIX)]


def _venv(program: str) -> str:
    return str(Path(sys.executable).parent / program)


def up(
    cluster: Cluster, environ: Mapping[str, str], workers: int | None = None, webserver: bool = True
) -> list[str]:
    """Start what is not running yet; what was done, one line each.

    Raises `ServiceError` naming the service and its address when PostgreSQL or Redis does not answer.
    """
    settings, layout, table = cluster.settings, cluster.layout, cluster.table
    write_distributed_home(cluster.deployment)
    done = [f"DAGSTER_HOME={layout.home}"]
    if settings.postgres.local:
        started = services.start_postgres(settings, layout)
        done.append(f"{services.postgres_address(settings)}: {'started' if started else 'running'}")
    if settings.redis.local:
        started = services.start_redis(settings, layout, table)
        done.append(f"{services.redis_address(settings)}: {'started' if started else 'running'}")
    services.require(settings, layout, environ)
    names = [f"{WORKER_PREFIX}{i}" for i in range(1, (settings.workers if workers is None else workers) + 1)]
    specs = [cluster.worker_spec(n) for n in names] + [cluster.daemon_spec()]
    specs += [cluster.webserver_spec()] if webserver else []
    for spec in specs:
        done.append(f"{spec.name}: pid {table.start(spec)}, log {table.log(spec.name)}")
    wait_for_workers(cluster, names)
    if webserver:
        wait_for_webserver(cluster)
        done.append(f"UI: http://127.0.0.1:{settings.webserver_port}")
    return done


def wait_for_workers(cluster: Cluster, names: list[str], timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until every named worker answers a Celery ping; raise naming the first that does not."""
    deadline = time.monotonic() + timeout
    waiting = set(names)
    with Celery(broker=redis_url(cluster.settings)) as app:
        while waiting:
            replies = app.control.ping(timeout=1.0)
            waiting -= {node.partition("@")[0] for reply in replies for node in reply}
            for name in sorted(waiting):
                log = cluster.table.log(name)
                if cluster.table.pid(name) is None:
                    raise services.ServiceError(f"Celery worker {name} exited; see {log}")
                if time.monotonic() > deadline:
                    raise services.ServiceError(
                        f"Celery worker {name} did not answer in {timeout:.0f} s; see {log}"
                    )


def wait_for_webserver(cluster: Cluster, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Wait until the webserver answers `/server_info`; raise naming its log if it exits or times out."""
    url = f"http://127.0.0.1:{cluster.settings.webserver_port}/server_info"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if cluster.table.pid(WEBSERVER) is None or time.monotonic() > deadline:
            raise services.ServiceError(
                f"the Dagster webserver did not answer at {url}; see {cluster.table.log(WEBSERVER)}"
            )
        time.sleep(1.0)


def down(cluster: Cluster) -> list[str]:
    """Stop the webserver, the daemon, the workers, then the loopback services; what was stopped."""
    table, settings = cluster.table, cluster.settings
    stopped = [name for name in [WEBSERVER, DAEMON, *cluster.workers()] if table.stop(name)]
    if settings.redis.local and table.stop(services.REDIS_PROCESS):
        stopped.append(services.redis_address(settings))
    if settings.postgres.local and services.stop_postgres(cluster.layout):
        stopped.append(services.postgres_address(settings))
    return stopped


def status(cluster: Cluster, environ: Mapping[str, str]) -> list[str]:
    """One line per service and process of this machine: running or not, and where."""
    settings, table = cluster.settings, cluster.table
    password = services.postgres_password(settings, cluster.layout, dict(environ))
    lines = [
        f"{services.postgres_address(settings)}: {services.check_postgres(settings, password) or 'answers'}",
        f"{services.redis_address(settings)}: {services.check_redis(settings) or 'answers'}",
    ]
    for name in table.names():
        pid = table.pid(name)
        lines.append(f"{name}: {'pid ' + str(pid) if pid else 'not running'} (log {table.log(name)})")
    return lines


def worker_command(
    cluster: Cluster, name: str, environ: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a worker machine's worker (after checking the services)."""
    write_distributed_home(cluster.deployment)
    services.require(cluster.settings, cluster.layout, environ)
    spec = cluster.worker_spec(name)
    return spec.command, {**environ, **spec.env}


class ClusterDaemon:
    """The profile's running daemon, seen as the CLI's demo sees its own daemon (it is not started here)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.log_path = cluster.table.log(DAEMON)

    def __enter__(self) -> ClusterDaemon:
        if not self.alive():
            raise services.ServiceError(
                f"the Dagster daemon of {self.cluster.layout.root} is not running: "
                "start it with `make distributed-up`"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        """Leave it running: it belongs to the cluster."""

    def alive(self) -> bool:
        """True while the daemon process runs."""
        return self.cluster.table.pid(DAEMON) is not None
