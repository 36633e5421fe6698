"""A deployment folder: settings validated with the file, field and reason; per-market overrides.

The code location is loaded in a child process for another deployment: what it reads (specs,
partitions, schedules) is fixed when the definitions are imported.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from factory_assets.core.paths import REPO_ROOT
from factory_assets.deployment import Deployment, DeploymentError, current
from factory_assets.specs_registry import SPECS

INSURER = REPO_ROOT / "examples" / "insurer"


def deployment_with(tmp_path: Path, settings: object) -> Path:
    folder = tmp_path / "deployment"
    shutil.copytree(INSURER, folder, ignore=shutil.ignore_patterns("data", ".dagster_home"))
    (folder / "config" / "factory.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return folder


def test_the_repository_root_is_the_default_deployment(monkeypatch):
    monkeypatch.delenv("FACTORY_PROJECT_DIR", raising=False)
    monkeypatch.delenv("FACTORY_DATA_DIR", raising=False)
    deployment = current()
    assert deployment.root == REPO_ROOT
    assert deployment.paths.data_dir == REPO_ROOT / "data"
    assert set(deployment.specs) == set(SPECS)


def test_the_data_dir_setting_and_its_override(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORY_PROJECT_DIR", str(INSURER))
    monkeypatch.setenv("FACTORY_DATA_DIR", str(tmp_path / "elsewhere"))
    assert current().paths.data_dir == tmp_path / "elsewhere"
    assert Deployment(INSURER).paths.data_dir == INSURER / "data"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"data_checker_1": {"thresholds": {"max_psi": -1}}}, "max_psi"),
        ({"data_checker_1": {"severities": {"customer_overlap": "sometimes"}}}, "customer_overlap"),
        ({"data_checker_1": {"severities": {"no_such_check": "off"}}}, "unknown Data Checker 1 check"),
        ({"data_checker_1": {"markets": {"Bad Market": {}}}}, "market name"),
        ({"data_checker_2": {"markets": {"nl": {"max_psi": "high"}}}}, "max_psi"),
        ({"sources": {"extrnal": []}}, "sources.extrnal"),
        (["a", "list"], "expected a mapping"),
    ],
)
def test_a_bad_settings_file_names_the_file_and_the_field(tmp_path, settings, message):
    folder = deployment_with(tmp_path, settings)
    with pytest.raises(DeploymentError, match=message) as raised:
        Deployment(folder)
    assert str(folder / "config" / "factory.yaml") in str(raised.value)


def test_a_missing_source_or_contract_is_named(tmp_path):
    folder = deployment_with(tmp_path, {"sources": {"external": ["config/nowhere.yaml"]}})
    with pytest.raises(DeploymentError, match=r"nowhere\.yaml"):
        _ = Deployment(folder).external_mappings
    (folder / "config" / "car_contract.yaml").unlink()
    with pytest.raises(DeploymentError, match="no CAR contract"):
        _ = Deployment(folder).contract


def test_checker_settings_apply_per_market(tmp_path):
    folder = deployment_with(
        tmp_path,
        {
            "data_checker_1": {
                "thresholds": {"max_psi": 0.3},
                "severities": {"customer_overlap": "off"},
                "markets": {"be": {"thresholds": {"max_psi": 0.5}, "severities": {"psi": "blocking"}}},
            },
            "data_checker_2": {"markets": {"be": {"max_psi": 0.6}}},
        },
    )
    deployment = Deployment(folder)
    nl, nl_severities = deployment.checker_one("nl")
    be, be_severities = deployment.checker_one("be")
    assert (nl.max_psi, be.max_psi) == (0.3, 0.5)
    assert nl_severities == {"customer_overlap": "off"}
    assert be_severities == {"customer_overlap": "off", "psi": "blocking"}
    spec = deployment.specs["lapse"]
    assert deployment.spec_for(spec, "be").score_checks.max_psi == 0.6
    assert deployment.spec_for(spec, "nl") is spec


def _load(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "from factory_assets.definitions import defs\n"
        "from factory_assets.partitions import models_partitions\n"
        "print(models_partitions.get_partition_keys())\n"
        "print([s.cron_schedule for s in defs.schedules])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_another_deployment_loads_its_own_models_and_schedules():
    done = _load({**os.environ, "FACTORY_PROJECT_DIR": str(INSURER)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "['lapse']" in done.stdout
    assert "'0 7 * * *'" in done.stdout  # examples/insurer/config/factory.yaml


def test_a_bad_deployment_fails_the_code_location_load_naming_file_and_field(tmp_path):
    folder = deployment_with(tmp_path, {"data_checker_1": {"thresholds": {"min_volume_ratio": 7}}})
    done = _load({**os.environ, "FACTORY_PROJECT_DIR": str(folder)})
    assert done.returncode != 0
    assert "config/factory.yaml" in done.stderr
    assert "min_volume_ratio" in done.stderr
