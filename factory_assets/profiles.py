"""The two profiles of one code base: the Dagster instance each one needs, written from the settings.

- `embedded` (the default): one machine; SQLite instance storage in `DAGSTER_HOME`, runs queued by
  the daemon and launched as local processes. Nothing beyond pip.
- `distributed`: Dagster's runs, events and schedules in PostgreSQL; runs queued by the daemon and
  launched onto Celery workers through Redis, one whole run per Celery task. Every worker, the daemon
  and the webserver use the same deployment folder and data folder (the shared path), so the
  factory's code does not change: only this instance configuration and the processes do.

Both profiles queue runs with the same limits: at most `max_concurrent_runs` at once, and a market's
runs (tag `factory/market`) one at a time, since one writer per market file is all the warehouse
supports (decision 33). The distributed profile adds run monitoring (a run whose worker is lost is
failed, not left STARTED) and run retries (such a run is re-executed from its failure on a live
worker; a run whose asset failed is not retried).

No Dagster import: this only writes YAML and a Celery settings module.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from factory_assets.deployment import Deployment, DeploymentError, DistributedSettings

MARKET_TAG = "factory/market"
"""The run tag naming a run's market (`jobs.row_tags`, the landing sensor): the concurrency key."""
CELERY_QUEUE = "dagster"
CELERY_CONFIG_MODULE = "dagster_celery_config"
"""The module `dagster_celery.app` imports, when it can, to override its defaults (on the workers)."""
LAUNCHER = ("factory_assets.celery_launcher", "FactoryCeleryRunLauncher")
PSYCOPG2_SCHEME = "postgresql+psycopg2"
"""SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which is not installed (dagster #33958)."""
EMBEDDED_MAX_RUNS = 2


@dataclass(frozen=True)
class ClusterLayout:
    """Where the distributed profile keeps its files on the shared data folder, and its local services."""

    root: Path
    services: Path

    @classmethod
    def of(cls, deployment: Deployment) -> ClusterLayout:
        """The layout of `deployment`: `<data_dir>/distributed`, services where the settings say."""
        root = deployment.paths.data_dir / "distributed"
        configured = deployment.settings.distributed.services_dir
        services = (deployment.root / configured).resolve() if configured else root / "services"
        return cls(root=root, services=services)

    @property
    def home(self) -> Path:
        """The profile's DAGSTER_HOME: dagster.yaml, the Celery settings, compute logs (shared by all)."""
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        """Logs of the processes `factory distributed up` started on this machine."""
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        """Process id files of the processes `factory distributed up` started on this machine."""
        return self.root / "pids"

    @property
    def postgres_data(self) -> Path:
        """The loopback PostgreSQL cluster (owned by the `postgres` user when run as root)."""
        return self.services / "postgres"

    @property
    def postgres_password(self) -> Path:
        """The loopback cluster's generated password (mode 600)."""
        return self.services / "postgres.password"

    @property
    def redis_data(self) -> Path:
        """The loopback Redis working folder."""
        return self.services / "redis"


def redis_url(settings: DistributedSettings) -> str:
    """The Celery broker and result backend URL."""
    redis = settings.redis
    return f"redis://{redis.host}:{redis.port}/{redis.db}"


def loopback_password(layout: ClusterLayout) -> str:
    """The loopback cluster's password, generated on first use and kept readable by its owner only."""
    path = layout.postgres_password
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(24))
    return path.read_text(encoding="utf-8").strip()


def postgres_password(settings: DistributedSettings, layout: ClusterLayout, environ: dict[str, str]) -> str:
    """The password to connect with: the loopback cluster's, else the one `password_env` names.

    Empty before the loopback cluster's first start (nothing is created here).
    """
    postgres = settings.postgres
    if postgres.local:
        path = layout.postgres_password
        return path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if postgres.password_env is None:
        return ""
    return environ.get(postgres.password_env, "")


def _storage(settings: DistributedSettings, layout: ClusterLayout) -> dict[str, Any]:
    postgres = settings.postgres
    if postgres.local:
        password: object = loopback_password(layout)
    elif postgres.password_env:
        password = {"env": postgres.password_env}
    else:
        password = ""
    database = {
        "username": postgres.user,
        "password": password,
        "hostname": postgres.host,
        "port": postgres.port,
        "db_name": postgres.database,
        "scheme": PSYCOPG2_SCHEME,
    }
    return {"postgres": {"postgres_db": database}}


def run_queue(max_concurrent_runs: int) -> dict[str, Any]:
    """The queue of both profiles: a global cap, and one run at a time per market."""
    return {
        "max_concurrent_runs": max_concurrent_runs,
        "tag_concurrency_limits": [
            {"key": MARKET_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ],
    }


def celery_settings(settings: DistributedSettings) -> dict[str, Any]:
    """Celery settings shared by the launcher (daemon) and the workers.

    One task at a time per worker process and no prefetch, so a queued run waits in Dagster's queue
    (where limits apply) rather than behind a busy worker; the result records its worker, so the
    run monitor can ask that worker whether it is alive.
    """
    url = redis_url(settings)
    return {
        "broker_url": url,
        "result_backend": url,
        "result_extended": True,
        "task_acks_late": False,
        "worker_prefetch_multiplier": 1,
        "worker_disable_prefetch": True,
        "broker_connection_retry_on_startup": True,
        # a run's own log lines are not warnings
        "worker_redirect_stdouts_level": "INFO",
    }


def embedded_instance() -> dict[str, Any]:
    """dagster.yaml of the embedded profile: SQLite in DAGSTER_HOME, the default local launcher."""
    return {"run_queue": run_queue(EMBEDDED_MAX_RUNS), "telemetry": {"enabled": False}}


def distributed_instance(settings: DistributedSettings, layout: ClusterLayout) -> dict[str, Any]:
    """dagster.yaml of the distributed profile."""
    module, name = LAUNCHER
    celery = celery_settings(settings)
    launcher = {
        "broker": celery["broker_url"],
        "backend": celery["result_backend"],
        "default_queue": CELERY_QUEUE,
        "config_source": {k: v for k, v in celery.items() if k not in ("broker_url", "result_backend")},
    }
    return {
        "storage": _storage(settings, layout),
        "run_queue": run_queue(settings.max_concurrent_runs),
        "run_launcher": {"module": module, "class": name, "config": launcher},
        "run_monitoring": {
            "enabled": True,
            "poll_interval_seconds": settings.monitor_interval_seconds,
            "start_timeout_seconds": settings.start_timeout_seconds,
            # a run is never resumed inside its old run: the retry below re-executes it from its failure
            "max_resume_run_attempts": 0,
        },
        "run_retries": {
            "enabled": settings.run_retries > 0,
            "max_retries": settings.run_retries,
            "retry_on_asset_or_op_failure": False,
        },
        "telemetry": {"enabled": False},
    }


def celery_module(settings: DistributedSettings) -> str:
    """The text of `dagster_celery_config.py`, which `celery -A dagster_celery.app worker` imports."""
    lines = [f"{key} = {value!r}" for key, value in celery_settings(settings).items()]
    header = '"""Celery settings of the factory\'s workers, written by `factory distributed`: do not edit."""'
    return "\n".join([header, "", *lines, ""])


def _write(path: Path, text: str, mode: int) -> None:
    """Write `text` through a temporary file and a rename: a worker reading it sees old or new, whole."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, path)


def write_distributed_home(deployment: Deployment) -> Path:
    """Write the distributed profile's DAGSTER_HOME from the settings (every time: they are the source)."""
    if deployment.profile != "distributed":
        raise DeploymentError(
            f"deployment {deployment.root} runs the {deployment.profile!r} profile; set `profile: "
            "distributed` in config/factory.yaml (or FACTORY_PROFILE=distributed)"
        )
    settings = deployment.settings.distributed
    layout = ClusterLayout.of(deployment)
    layout.home.mkdir(parents=True, exist_ok=True)
    header = "# Written by `factory distributed` from config/factory.yaml (`distributed:`): edit that file.\n"
    config = yaml.safe_dump(distributed_instance(settings, layout), sort_keys=False)
    # the file may hold the loopback cluster's password
    _write(layout.home / "dagster.yaml", header + config, 0o600)
    _write(layout.home / f"{CELERY_CONFIG_MODULE}.py", celery_module(settings), 0o644)
    return layout.home


def write_embedded_home(home: Path) -> Path:
    """Write the embedded profile's dagster.yaml into `home` unless one is there (the user's to edit)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump(embedded_instance(), sort_keys=False), encoding="utf-8")
    return home
