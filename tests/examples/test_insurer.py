"""The insurer example deployment end to end, from a copy of `examples/insurer`, as `make run-insurer`.

Another business's CAR: a `;` CSV export mapped onto its own contract, a different key and date
format, monthly renewal cohorts (new customers every month, so `customer_overlap` is turned off in
its `config/factory.yaml`), a lapse label known for every month but the latest, and a column that
is NULL throughout the early months. The release must hold exactly the latest month's customers.
"""

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from factory_assets.core.paths import REPO_ROOT
from factory_assets.core.release.store import ReleaseStore
from factory_assets.deployment import Deployment

EXAMPLE = REPO_ROOT / "examples" / "insurer"


@pytest.fixture(scope="module")
def insurer_run(tmp_path_factory):
    """`factory --project <copy> insurer` in a child process: export written, every market run once."""
    root = tmp_path_factory.mktemp("insurer")
    project = root / "insurer"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("data", ".dagster_home"))
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
    env.pop("FACTORY_DATA_DIR", None)
    command = [sys.executable, "-m", "factory_assets.cli", "--project", str(project), "insurer"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"the insurer example failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return Deployment(project), done.stdout


def test_every_market_releases_exactly_its_latest_cohort(insurer_run):
    deployment, _ = insurer_run
    export = pd.read_csv(
        deployment.paths.data_dir / "export" / "policies.csv", sep=";", dtype={"policy_no": str}
    )
    store = ReleaseStore(deployment.paths.releases)
    for country, market in {"NL": "nl", "BE": "be"}.items():
        rows = export[export["country"] == country]
        latest = rows[rows["month"] == rows["month"].max()]
        assert latest["lapsed"].isna().all(), "the example's latest month must be unlabelled"
        manifest = store.read_manifest(market, "lapse")
        released = store.load_release(manifest)
        assert str(manifest.snapshot_date) == "2025-08-01", f"{market} released {manifest.snapshot_date}"
        assert set(released["customer_id"]) == set(latest["policy_no"]), f"{market}: wrong customers"
        assert len(released) == len(latest)


def test_the_new_customer_source_ingests_with_its_overlap_check_off(insurer_run):
    deployment, _ = insurer_run
    results = (
        deployment.paths.warehouses()
        .union()
        .query('select market, "check", severity, passed, detail from ops.car_check_results')
    )
    overlap = results[results["check"] == "customer_overlap"]
    assert set(overlap["severity"]) == {"off"}
    assert overlap["passed"].all()
    gate = (
        deployment.paths.warehouses()
        .union()
        .query("select market, status from ops.cell_status where stage = 'data_checker_1'")
    )
    assert set(gate["status"]) == {"ok"}, gate.to_string()
