"""The profiles' instance configuration, written from the settings, and the process table (no services)."""

from __future__ import annotations

import os
import sys

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from support.distributed import write_deployment

from factory_assets import profiles
from factory_assets.celery_launcher import FactoryCeleryRunLauncher
from factory_assets.cluster.processes import ProcessSpec, ProcessTable
from factory_assets.deployment import Deployment, DeploymentError

MARKET_LIMIT = {"key": "factory/market", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


@pytest.fixture
def deployment(tmp_path) -> Deployment:
    settings = {
        "services_dir": str(tmp_path / "services"),
        "postgres": {"port": 25999},
        "redis": {"port": 26999, "db": 3},
        "max_concurrent_runs": 4,
        "run_retries": 1,
        "monitor_interval_seconds": 7,
    }
    return Deployment(write_deployment(tmp_path / "deployment", settings), tmp_path / "data")


def test_the_distributed_instance_is_valid_dagster_config_written_from_the_settings(deployment):
    home = profiles.write_distributed_home(deployment)
    config, _ = dagster_instance_config(str(home))
    database = config["storage"]["postgres"]["postgres_db"]
    assert (database["hostname"], database["port"], database["scheme"]) == (
        "127.0.0.1",
        25999,
        "postgresql+psycopg2",
    ), "SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3"
    assert database["password"] == profiles.ClusterLayout.of(deployment).postgres_password.read_text().strip()
    assert (home / "dagster.yaml").stat().st_mode & 0o077 == 0, "the file holds a password"
    assert config["run_queue"] == {"max_concurrent_runs": 4, "tag_concurrency_limits": [MARKET_LIMIT]}
    assert config["run_retries"] == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["poll_interval_seconds"] == 7
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == profiles.LAUNCHER
    checked = validate_config(FactoryCeleryRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    assert launcher["config"]["broker"] == "redis://127.0.0.1:26999/3"


def test_the_workers_celery_settings_match_the_launchers(deployment):
    home = profiles.write_distributed_home(deployment)
    namespace: dict[str, object] = {}
    exec((home / f"{profiles.CELERY_CONFIG_MODULE}.py").read_text(encoding="utf-8"), namespace)
    launcher = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))["run_launcher"]["config"]
    assert namespace["broker_url"] == namespace["result_backend"] == launcher["broker"] == launcher["backend"]
    for key, value in launcher["config_source"].items():
        assert namespace[key] == value, key
    assert namespace["worker_disable_prefetch"] is True and namespace["result_extended"] is True


def test_the_embedded_instance_limits_each_market_to_one_run(tmp_path):
    home = profiles.write_embedded_home(tmp_path / "home")
    config, _ = dagster_instance_config(str(home))
    assert config["run_queue"]["tag_concurrency_limits"] == [MARKET_LIMIT]
    assert "storage" not in config and "run_launcher" not in config, "the embedded profile stays on SQLite"


def test_the_profile_comes_from_the_settings_and_the_environment_overrides_it(deployment):
    assert deployment.profile == "distributed"
    embedded = Deployment(deployment.root, deployment.paths.data_dir, "embedded")
    with pytest.raises(DeploymentError, match="set `profile: distributed`"):
        profiles.write_distributed_home(embedded)
    with pytest.raises(DeploymentError, match="FACTORY_PROFILE='cluster'"):
        Deployment(deployment.root, deployment.paths.data_dir, "cluster")


def test_the_process_table_signals_only_its_own_processes(tmp_path):
    table = ProcessTable(pids=tmp_path / "pids", logs=tmp_path / "logs")
    pid = table.start(ProcessSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path))
    assert table.pid("sleeper") == pid and table.start(ProcessSpec("sleeper", ["false"], tmp_path)) == pid
    # a pid file naming a live process that is another program (a reused pid) is not ours
    table.pid_file("stranger").write_text(f"{os.getpid()}\n/nonexistent/program\n", encoding="utf-8")
    assert table.pid("stranger") is None
    assert table.stop("stranger") is False
    assert table.stop("sleeper") is True
    assert table.pid("sleeper") is None and table.names() == []
    with pytest.raises(ProcessLookupError, match="sleeper"):
        table.kill("sleeper")
