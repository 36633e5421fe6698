"""Helpers of the distributed profile's tests: a small deployment on free loopback ports, run summaries.

The deployment has one cheap model (`churn`, a logistic fit on two folds) so that a market's row is
one cell; its CAR is the reliability tests' small seeded demo (`demo_config`). Its settings choose the
distributed profile, free ports, a short run-monitor interval, and a services folder in /tmp that the
`postgres` user can reach (pytest's own temporary folders are closed to other users).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from factory_assets.core.paths import REPO_ROOT

MODEL = "churn"
CHEAP_CHURN = {
    "description": "Churn within two months (a cheap fit for the distributed profile's tests).",
    "target": {
        "kind": "movement",
        "product": "base_tier",
        "from": ["basic", "standard", "premium"],
        "to": ["churned"],
        "horizon": 2,
    },
    "features": {
        "history": {
            "columns": ["viewing_hours", "sessions", "arpu", "late_payments", "support_calls"],
            "windows": [3],
        }
    },
    "model": {"families": ["logistic"], "logistic": {"c_grid": [0.1, 1.0], "cv_folds": 2}},
}
ACTIVE = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def free_port() -> int:
    """A TCP port nothing listens on at this moment (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def services_folder() -> Path:
    """A folder for the loopback services that the `postgres` user can reach (removed by the caller)."""
    folder = Path(tempfile.mkdtemp(prefix="factory-services-", dir="/tmp"))
    folder.chmod(0o755)
    return folder


def remove_services_folder(folder: Path) -> None:
    """Remove a services folder (its PostgreSQL files belong to `postgres`; root removes them)."""
    shutil.rmtree(folder, ignore_errors=True)


def write_deployment(root: Path, distributed: dict[str, object]) -> Path:
    """A deployment folder: the repository's CAR contract, the cheap churn spec, the given settings."""
    (root / "config").mkdir(parents=True)
    (root / "model_specs").mkdir()
    shutil.copy(REPO_ROOT / "config" / "car_contract.yaml", root / "config" / "car_contract.yaml")
    spec = yaml.safe_dump(CHEAP_CHURN, sort_keys=False)
    (root / "model_specs" / f"{MODEL}.yaml").write_text(spec, encoding="utf-8")
    settings = {
        "name": "distributed-test",
        "profile": "distributed",
        "sources": {"settle_seconds": 0},
        "distributed": distributed,
    }
    (root / "config" / "factory.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return root


@dataclass(frozen=True)
class RunSummary:
    """What the tests check of one run: job, market, status, worker, times, retry number."""

    run_id: str
    job: str
    market: str | None
    status: dg.DagsterRunStatus
    worker: str | None
    start: float | None
    end: float | None
    retry: str | None


def summaries(instance: dg.DagsterInstance) -> list[RunSummary]:
    """Every run of the instance, oldest first, with the Celery worker it ran on."""
    found = []
    for record in reversed(instance.get_run_records(limit=200)):
        run = record.dagster_run
        found.append(
            RunSummary(
                run_id=run.run_id,
                job=run.job_name,
                market=run.tags.get("factory/market"),
                status=run.status,
                worker=instance.run_launcher.worker_of(run),
                start=record.start_time,
                end=record.end_time,
                retry=run.tags.get("dagster/retry_number"),
            )
        )
    return found


def wait_for(
    instance: dg.DagsterInstance,
    done: Callable[[list[RunSummary]], bool],
    timeout: float,
    quiet_seconds: float | None = None,
) -> list[RunSummary]:
    """Wait until `done(runs)` holds; with `quiet_seconds`, also until no run was active for that long.

    The quiet time covers the runs that sensors chain after the last one (the status grid's).
    """
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        runs = summaries(instance)
        if done(runs) and quiet_seconds is None:
            return runs
        if done(runs) and not any(r.status in ACTIVE for r in runs):
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_seconds:
                return runs
        else:
            quiet_since = None
        time.sleep(1)
    listed = "\n".join(f"  {r}" for r in summaries(instance))
    raise AssertionError(f"the distributed factory did not get there within {timeout:.0f} s:\n{listed}")


def overlap(a: RunSummary, b: RunSummary) -> bool:
    """True when two finished runs were executing at the same time."""
    return a.start is not None and b.start is not None and a.start < (b.end or 0) and b.start < (a.end or 0)


def leftover_temp_files(*roots: Path) -> list[str]:
    """Temporary files of interrupted atomic writes (`.x.tmp`, `.incoming-*`) under `roots`."""
    return sorted(
        str(p)
        for root in roots
        if root.exists()
        for p in root.rglob("*")
        if p.name.endswith(".tmp") or p.name.startswith(".incoming-")
    )
