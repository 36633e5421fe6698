"""`factory distributed ...`: start, stop and inspect the distributed profile; run a worker machine.

`up` and `down` are what `make distributed-up` / `make distributed-down` call; `worker` is the one
command of a worker machine; `profile` prints the deployment's profile (the Makefile asks it).
A service that does not answer ends the command with its name, address and what to do, not a trace.

The control module (Celery, psycopg2, redis) is imported only when a distributed command runs: the
embedded profile's CLI does not need the `distributed` extra installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from factory_assets import deployment
from factory_assets.deployment import Deployment, DeploymentError

if TYPE_CHECKING:
    from factory_assets.cluster.control import Cluster, ClusterDaemon


def distributed_cluster(current: Deployment | None = None) -> Cluster:
    """The deployment's distributed profile; refused, with the reason, for an embedded one."""
    from factory_assets.cluster.control import Cluster

    current = current or deployment.current()
    if current.profile != "distributed":
        raise SystemExit(
            f"factory distributed: deployment {current.root} runs the '{current.profile}' profile; set "
            "`profile: distributed` in its config/factory.yaml, or FACTORY_PROFILE=distributed "
            "(make ... PROFILE=distributed)"
        )
    return Cluster(current)


def attach(current: Deployment) -> Path:
    """Bring the distributed profile up (what is not running yet) and point this process at its instance.

    For the CLI's commands that drive a running factory (`demo`, `once`); returns its DAGSTER_HOME.
    """
    from factory_assets.cluster.control import up
    from factory_assets.cluster.services import ServiceError

    cluster = distributed_cluster(current)
    try:
        print("\n".join(up(cluster, os.environ)))
    except (ServiceError, DeploymentError) as exc:
        raise SystemExit(f"factory: {exc}") from exc
    os.environ["DAGSTER_HOME"] = str(cluster.layout.home)
    return cluster.layout.home


def running_daemon(current: Deployment) -> ClusterDaemon:
    """The distributed profile's daemon, already running (the CLI's demo waits on it, starts none)."""
    from factory_assets.cluster.control import ClusterDaemon

    return ClusterDaemon(distributed_cluster(current))


def _up(args: argparse.Namespace) -> None:
    from factory_assets.cluster.control import up
    from factory_assets.cluster.services import ServiceError

    cluster = distributed_cluster()
    try:
        lines = up(cluster, os.environ, workers=args.workers, webserver=not args.no_webserver)
    except (ServiceError, DeploymentError) as exc:
        raise SystemExit(f"factory distributed up: {exc}") from exc
    print("\n".join(lines))


def _down(_: argparse.Namespace) -> None:
    from factory_assets.cluster.control import down

    stopped = down(distributed_cluster())
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def _status(_: argparse.Namespace) -> None:
    from factory_assets.cluster.control import status

    print("\n".join(status(distributed_cluster(), os.environ)))


def _worker(args: argparse.Namespace) -> None:
    from factory_assets.cluster.control import worker_command
    from factory_assets.cluster.services import ServiceError

    cluster = distributed_cluster()
    try:
        command, env = worker_command(cluster, args.name, os.environ)
    except (ServiceError, DeploymentError) as exc:
        raise SystemExit(f"factory distributed worker: {exc}") from exc
    sys.stdout.flush()
    os.execve(command[0], command, env)


def _profile(_: argparse.Namespace) -> None:
    print(deployment.current().profile)


def add_distributed_commands(sub: argparse._SubParsersAction) -> None:
    """The `distributed` command group."""
    group = sub.add_parser("distributed", help="start, stop or inspect the distributed profile")
    commands = group.add_subparsers(dest="action", required=True)
    start = commands.add_parser(
        "up", help="start PostgreSQL, Redis, the workers, the daemon and the webserver (what is not running)"
    )
    start.add_argument("--workers", type=int, help="worker processes here (default: distributed.workers)")
    start.add_argument("--no-webserver", action="store_true", help="do not start the webserver")
    start.set_defaults(func=_up)
    commands.add_parser("down", help="stop what `up` started on this machine").set_defaults(func=_down)
    commands.add_parser("status", help="services and processes of this machine").set_defaults(func=_status)
    worker = commands.add_parser("worker", help="run one Celery worker in the foreground (a worker machine)")
    worker.add_argument("--name", default="worker", help="its node name is <name>@<host>")
    worker.set_defaults(func=_worker)
    commands.add_parser("profile", help="print the deployment's profile").set_defaults(func=_profile)
