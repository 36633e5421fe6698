"""The Dagster UI in a real browser: the graph shows every stage and check, and a user launches
one market x model partition from the Materialize dialog and sees the run succeed.

Runs `dagster dev` on a small demo factory (one market, one month of history per model's need)
and drives Debian's Chromium with Playwright (`scripts/ensure_chromium.sh` installs it).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest
from dagster._core.instance.ref import InstanceRef

from factory_assets.core.paths import REPO_ROOT, FactoryPaths
from factory_assets.definitions import defs
from factory_assets.demo.car import DemoConfig, write_landing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MARKET, MODEL = "uk", "churn"

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def factory_home(tmp_path_factory):
    """A small demo factory whose market has been ingested and checked (in-process)."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    paths = FactoryPaths(root / "data")
    write_landing(DemoConfig(markets={MARKET: 1500}, months=8, seed=3), paths.landing)
    env = {**os.environ, "DAGSTER_HOME": str(home), "FACTORY_DATA_DIR": str(paths.data_dir)}
    dagster = str(Path(sys.executable).parent / "dagster")
    ingest = [dagster, "asset", "materialize", "-m", "factory_assets.definitions",
              "--select", "car_snapshots", "--partition", MARKET]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.add_dynamic_partitions("markets", [MARKET])
    subprocess.run(ingest, cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=300)
    return home, env


@pytest.fixture(scope="module")
def ui_url(factory_home):
    """`dagster dev` over the small factory; stopped with its whole process group."""
    _, env = factory_home
    port = free_port()
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]
    log = (Path(env["DAGSTER_HOME"]) / "dev.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail(f"dagster dev did not start; see {log.name}")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def page(ui_url):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/ensure_chromium.sh (make test does)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def dismiss_popups(page) -> None:
    page.wait_for_timeout(2500)
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def test_asset_graph_shows_every_stage_and_check(page, ui_url):
    page.goto(f"{ui_url}/asset-groups")
    dismiss_popups(page)
    page.locator('[aria-label="settings"]').last.click(force=True)
    page.get_by_role("menu").get_by_text("Expand all groups").click()
    for stage in [key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()]:
        page.get_by_text(stage, exact=True).first.wait_for()
    checks: dict[str, list[str]] = {}
    for key in defs.resolve_asset_graph().asset_check_keys:
        checks.setdefault(key.asset_key.to_user_string(), []).append(key.name)
    assert {"car_snapshots", "scores"} <= set(checks)
    for asset, names in checks.items():
        page.goto(f"{ui_url}/assets/{asset}?view=checks")
        for name in names:
            page.get_by_text(name, exact=True).first.wait_for(state="attached")  # long names are truncated


def test_materialize_one_cell_from_the_ui(page, ui_url, factory_home):
    home, _ = factory_home
    page.goto(f"{ui_url}/assets/training_frame")
    dismiss_popups(page)
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    for value in (MARKET, MODEL):
        dialog.get_by_text("Select a partition or create one").first.click()
        page.get_by_role("menu").get_by_text(value, exact=True).first.click()
        page.keyboard.press("Escape")
    dialog.get_by_role("button", name="Launch 1 run").click()
    page.get_by_text("View", exact=True).first.click()
    page.get_by_text("Success", exact=True).first.wait_for(timeout=240_000)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        partitions = {run.tags.get("dagster/partition") for run in runs}
    assert f"{MARKET}|{MODEL}" in partitions
