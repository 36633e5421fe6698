"""The distributed profile's run launcher: dagster-celery's, with a health check that notices a lost worker.

`CeleryRunLauncher` judges a started run by its Celery task's state. A worker killed outright (the
machine lost, `kill -9`) never updates that state, so the task stays STARTED and the run would stay
STARTED forever. This launcher asks the worker the task started on whether it is still there (a
Celery ping, answered by the worker's main process even while its pool runs the task); a worker that
answers none of a few pings is reported FAILED, so the daemon's run monitor fails the run and the
run retries re-execute it on a live worker.
"""

from __future__ import annotations

from dagster import DagsterRun
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

PING_ATTEMPTS = 3
PING_TIMEOUT_SECONDS = 2.0


class FactoryCeleryRunLauncher(CeleryRunLauncher):
    """`CeleryRunLauncher` whose health check pings the worker a started run is on (configured the same)."""

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """RUNNING only while the task's worker answers; FAILED, naming it, once it no longer does."""
        health = super().check_run_worker_health(run)
        if health.status != WorkerStatus.RUNNING:
            return health
        worker = self.worker_of(run)
        if worker is None or self._answers(worker):
            return health
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"Celery worker {worker} that started run {run.run_id} answered none of {PING_ATTEMPTS} "
            f"pings of {PING_TIMEOUT_SECONDS:.0f} s: the worker is lost",
        )

    def worker_of(self, run: DagsterRun) -> str | None:
        """The Celery node name (`name@host`) that started or ran the run's task, if recorded."""
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        if task_id is None:
            return None
        result = self.celery.AsyncResult(task_id)
        info = result.info
        if result.state == "STARTED" and isinstance(info, dict):
            return info.get("hostname")
        return result.worker

    def _answers(self, worker: str) -> bool:
        # a single missed ping (a busy broker) must not fail a live run and start a second writer
        for _ in range(PING_ATTEMPTS):
            if self.celery.control.ping(destination=[worker], timeout=PING_TIMEOUT_SECONDS):
                return True
        return False
