"""PostgreSQL and Redis for the distributed profile: the loopback ones started here, and checks of any.

The loopback PostgreSQL cluster is Debian's PostgreSQL, initialised (`initdb`) and started (`pg_ctl`)
under the services folder as the `postgres` user when this runs as root (PostgreSQL refuses root),
listening on the configured address only, without a Unix socket, with password authentication for
its one role. Loopback Redis is `redis-server` bound to the configured address, without persistence:
it only carries runs the daemon already dequeued, which the run monitor fails and retries if lost.

`require` checks that both answer before any factory process starts, and says which one does not,
at which address, and what to do, instead of letting the daemon and the workers fail with traces.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import psycopg2
import redis
from psycopg2 import sql

from factory_assets.cluster.processes import ProcessSpec, ProcessTable
from factory_assets.deployment import DistributedSettings
from factory_assets.profiles import ClusterLayout, loopback_password, postgres_password

CONNECT_TIMEOUT_SECONDS = 3
PG_START_TIMEOUT_SECONDS = 60
REDIS_START_TIMEOUT_SECONDS = 20
POSTGRES_BIN = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"
REDIS_PROCESS = "redis"
HINT = (
    "start the loopback services with `make distributed-up`, or fix `distributed.postgres` / "
    "`distributed.redis` in config/factory.yaml"
)


class ServiceError(RuntimeError):
    """A service that is missing, cannot start or does not answer; the message names it and its address."""


def postgres_address(settings: DistributedSettings) -> str:
    """`PostgreSQL at host:port`, as messages name it."""
    return f"PostgreSQL at {settings.postgres.host}:{settings.postgres.port}"


def redis_address(settings: DistributedSettings) -> str:
    """`Redis at host:port`, as messages name it."""
    return f"Redis at {settings.redis.host}:{settings.redis.port}"


def check_postgres(settings: DistributedSettings, password: str) -> str | None:
    """None when the instance database answers, else what is wrong (the service, its address, why)."""
    postgres = settings.postgres
    try:
        psycopg2.connect(
            host=postgres.host,
            port=postgres.port,
            user=postgres.user,
            password=password,
            dbname=postgres.database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ).close()
    except psycopg2.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return f"{postgres_address(settings)} (database {postgres.database}, user {postgres.user}): {reason}"
    return None


def check_redis(settings: DistributedSettings) -> str | None:
    """None when the broker answers a PING, else what is wrong (the service, its address, why)."""
    client = redis.Redis(
        host=settings.redis.host,
        port=settings.redis.port,
        db=settings.redis.db,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{redis_address(settings)} (the Celery broker): {exc}"
    finally:
        client.close()
    return None


def require(settings: DistributedSettings, layout: ClusterLayout, environ: Mapping[str, str]) -> None:
    """Raise `ServiceError` naming every service of the profile that does not answer."""
    problems = [
        problem
        for problem in (
            check_postgres(settings, postgres_password(settings, layout, dict(environ))),
            check_redis(settings),
        )
        if problem
    ]
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ServiceError(f"the distributed profile's services do not answer:\n{lines}\n{HINT}")


# ---- the loopback PostgreSQL cluster -------------------------------------------------------------


def _pg_program(name: str) -> Path:
    """`initdb` / `pg_ctl`: on the PATH, else the newest of Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = sorted(POSTGRES_BIN.glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise ServiceError(
            f"PostgreSQL's {name} is not installed: run `bash scripts/ensure_services.sh` as root "
            "(it installs Debian's postgresql and redis-server)"
        )
    return candidates[-1]


def _service_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as when this runs as root; None when this process is not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise ServiceError(
            f"running as root and there is no '{SERVICE_USER}' user to run PostgreSQL as: run "
            "`bash scripts/ensure_services.sh`"
        ) from exc


def _as_service_user(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    user = _service_user()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    if user is None:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    env["HOME"] = user.pw_dir
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
    )


def _owned_by_service_user(path: Path, mode: int) -> None:
    user = _service_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)


def _initdb(settings: DistributedSettings, layout: ClusterLayout) -> None:
    data = layout.postgres_data
    data.mkdir(parents=True, exist_ok=True)
    _owned_by_service_user(data, 0o700)
    loopback_password(layout)
    _owned_by_service_user(layout.postgres_password, 0o600)
    if _as_service_user(["test", "-w", str(data)], layout.services).returncode != 0:
        raise ServiceError(
            f"the '{SERVICE_USER}' user cannot reach {data} (a parent folder is closed to other users): "
            "open its parents to others (chmod o+x) or set `distributed.services_dir` to one it reaches"
        )
    command = [
        str(_pg_program("initdb")),
        "-D",
        str(data),
        "-U",
        settings.postgres.user,
        f"--pwfile={layout.postgres_password}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    done = _as_service_user(command, layout.services)
    if done.returncode != 0:
        raise ServiceError(
            f"initdb of the loopback PostgreSQL cluster in {data} failed:\n{done.stderr.strip()}"
        )


def _pg_ctl(layout: ClusterLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return _as_service_user(
        [str(_pg_program("pg_ctl")), "-D", str(layout.postgres_data), *args], layout.services
    )


def postgres_running(layout: ClusterLayout) -> bool:
    """True while the loopback cluster's postmaster runs."""
    if not (layout.postgres_data / "PG_VERSION").is_file():
        return False
    return _pg_ctl(layout, "status").returncode == 0


def start_postgres(settings: DistributedSettings, layout: ClusterLayout) -> bool:
    """Initialise (first time) and start the loopback cluster and its database; False if it already ran."""
    if not (layout.postgres_data / "PG_VERSION").is_file():
        _initdb(settings, layout)
    started = False
    if not postgres_running(layout):
        log = layout.services / "postgres.log"
        log.touch()
        _owned_by_service_user(log, 0o640)
        postgres = settings.postgres
        options = f"-c listen_addresses={postgres.host} -c port={postgres.port} -c unix_socket_directories=''"
        args = ["-l", str(log), "-o", options, "-w", "-t", str(PG_START_TIMEOUT_SECONDS), "start"]
        done = _pg_ctl(layout, *args)
        if done.returncode != 0:
            tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:])
            raise ServiceError(f"{postgres_address(settings)} did not start ({log}):\n{tail}")
        started = True
    _create_database(settings, layout)
    return started


def _create_database(settings: DistributedSettings, layout: ClusterLayout) -> None:
    postgres = settings.postgres
    connection = psycopg2.connect(
        host=postgres.host,
        port=postgres.port,
        user=postgres.user,
        password=loopback_password(layout),
        dbname="postgres",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("select 1 from pg_database where datname = %s", [postgres.database])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("create database {}").format(sql.Identifier(postgres.database)))
    finally:
        connection.close()


def stop_postgres(layout: ClusterLayout) -> bool:
    """Stop the loopback cluster (fast: open sessions are ended); False if it was not running."""
    if not postgres_running(layout):
        return False
    done = _pg_ctl(layout, "-m", "fast", "-w", "stop")
    if done.returncode != 0:
        raise ServiceError(f"pg_ctl stop of {layout.postgres_data} failed:\n{done.stderr.strip()}")
    return True


# ---- loopback Redis ------------------------------------------------------------------------------


def start_redis(settings: DistributedSettings, layout: ClusterLayout, table: ProcessTable) -> bool:
    """Start loopback Redis unless it runs; wait until it answers. False if it already ran."""
    if table.pid(REDIS_PROCESS) is not None:
        return False
    program = shutil.which("redis-server")
    if program is None:
        raise ServiceError(
            "redis-server is not installed: run `bash scripts/ensure_services.sh` as root "
            "(it installs Debian's postgresql and redis-server)"
        )
    layout.redis_data.mkdir(parents=True, exist_ok=True)
    command = [program, "--bind", settings.redis.host, "--port", str(settings.redis.port)]
    command += [
        "--dir",
        str(layout.redis_data),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    table.start(ProcessSpec(REDIS_PROCESS, command, layout.redis_data))
    deadline = time.monotonic() + REDIS_START_TIMEOUT_SECONDS
    while (problem := check_redis(settings)) is not None:
        if table.pid(REDIS_PROCESS) is None or time.monotonic() > deadline:
            raise ServiceError(
                f"{redis_address(settings)} did not start (log {table.log(REDIS_PROCESS)}): {problem}"
            )
        time.sleep(0.2)
    return True
