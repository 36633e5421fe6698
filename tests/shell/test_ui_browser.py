"""The Dagster UI in a real browser: every asset has its page and shows its checks, and a user
launches one market x model partition and sees the run succeed.

Runs `dagster dev` on a small demo factory (one market, eight months of CAR history) and drives
Debian's Chromium with Playwright (`scripts/ensure_chromium.sh` installs it).

The tests wait only on states the UI reaches, never on fixed sleeps, and use the pages a user
opens rather than menus that move between Dagster versions:
- each asset's own page (`/assets/<key>?view=checks`) shows its tabs and lists every check of the
  asset (a long name is middle-truncated on screen; its full name is the row's hover title);
- on `training_frame`'s Partitions tab the user picks market `uk` and model `churn`; the
  Materialize dialog opens with that one partition selected ("Launch 1 run"); the launched run's
  page shows Success.
The instance is set up so nothing else competes with that run: the community pop-up is off
(`nux`), and runs from sensors and schedules stay queued (a tag concurrency limit of 0), so the
new-CAR sensor cannot start an ingest and a whole row of models next to the test's run. A pop-up
with a Skip button is still dismissed whenever it shows up (a Playwright locator handler).
"""

import contextlib
import os
import re
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
from support.browser import launch_chromium

from factory_assets.core.paths import REPO_ROOT, FactoryPaths
from factory_assets.definitions import defs
from factory_assets.demo.car import DemoConfig, write_landing

MARKET, MODEL = "uk", "churn"
PARTITION = f"{MARKET}|{MODEL}"
# Generous: the machine may be small and busy. Every wait ends as soon as the state is reached.
STARTUP_SECONDS = 300
UI_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 600_000
INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    tag_concurrency_limits:
      - key: dagster/sensor_name
        limit: 0
      - key: dagster/schedule_name
        limit: 0
"""
LOCATIONS_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
RUN_ENDED = re.compile(r"^(Success|Failure|Canceled)$")


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
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    paths = FactoryPaths(root / "data")
    write_landing(DemoConfig(markets={MARKET: 1500}, months=8, seed=3), paths.landing)
    env = {**os.environ, "DAGSTER_HOME": str(home), "FACTORY_DATA_DIR": str(paths.data_dir)}
    dagster = str(Path(sys.executable).parent / "dagster")
    ingest = [
        dagster,
        "asset",
        "materialize",
        "-m",
        "factory_assets.definitions",
        "--select",
        "car_snapshots",
        "--partition",
        MARKET,
    ]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.add_dynamic_partitions("markets", [MARKET])
    done = subprocess.run(ingest, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"ingest failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return home, env


def location_state(url: str) -> tuple[bool, str]:
    """(ready, why not): every code location loaded without error, as the webserver reports it."""
    try:
        reply = httpx.post(f"{url}/graphql", json={"query": LOCATIONS_QUERY}, timeout=10)
        workspace = reply.json()["data"]["workspaceOrError"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return False, f"webserver not answering yet: {exc!r}"
    entries = workspace.get("locationEntries") or []
    if not entries:
        return False, f"no code location yet: {workspace}"
    for entry in entries:
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {loaded['message']}")
        if entry["loadStatus"] != "LOADED" or loaded.get("__typename") != "RepositoryLocation":
            return False, f"code location {entry['name']} is {entry['loadStatus']}"
    return True, ""


@pytest.fixture(scope="module")
def ui_url(factory_home):
    """`dagster dev` over the small factory, once its code location is loaded; stopped with its
    whole process group."""
    _, env = factory_home
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    log_path = Path(env["DAGSTER_HOME"]) / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        ready, why = False, "not polled"
        while not ready:
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited with {process.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev not ready after {STARTUP_SECONDS} s ({why}); see {log_path}")
            ready, why = location_state(url)
            if not ready:
                time.sleep(1)  # polling interval while the server starts, not a wait for the UI
        yield url
    finally:
        # Ctrl+C is what `dagster dev` shuts down on; after SIGTERM it waited out the whole minute below.
        os.killpg(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
        with contextlib.suppress(ProcessLookupError):  # whatever outlived it (code server, run workers)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def page(ui_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.set_default_navigation_timeout(UI_TIMEOUT_MS)
            # A pop-up that asks to be skipped (Dagster's community sign-up and the like) can open
            # at any moment after a page loads: Playwright dismisses it whenever it is in the way.
            skip = page.get_by_role("button", name="Skip", exact=True)
            page.add_locator_handler(page.get_by_role("dialog").filter(has=skip), lambda _: skip.click())
            yield page
        finally:
            browser.close()


def test_every_asset_and_check_is_shown(page, ui_url):
    from playwright.sync_api import expect

    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {key.to_user_string(): [] for key in graph.get_all_asset_keys()}
    for key in graph.asset_check_keys:
        checks[key.asset_key.to_user_string()].append(key.name)
    assert {"car_snapshots", "scores", "training_frame"} <= {a for a, names in checks.items() if names}
    for asset, names in sorted(checks.items()):
        page.goto(f"{ui_url}/assets/{asset}?view=checks")
        # An unknown key shows "No assets were found"; a known asset has its own tabs.
        expect(page.get_by_role("tab", name="Checks", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
        for name in names:
            # The row's hover title is the full name; the visible text is middle-truncated when long.
            expect(page.get_by_title(name, exact=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)


def run_failure(home: Path, run_id: str) -> str:
    """The errors the instance logged for a run, for an assertion message."""
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        errors = []
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            error = getattr(event.event_specific_data, "error", None) if event else None
            if error is not None:
                errors.append(f"{event.event_type_value}: {error.message.strip()}")
        return "\n".join(errors) or "no error logged"


def test_materialize_one_cell_from_the_ui(page, ui_url, factory_home):
    from playwright.sync_api import expect

    home, _ = factory_home
    page.goto(f"{ui_url}/assets/training_frame?view=partitions")
    # Pick the cell on the Partitions tab: the market column, then the model column.
    page.get_by_text(MARKET, exact=True).filter(visible=True).first.click()
    page.get_by_text(MODEL, exact=True).filter(visible=True).first.click()
    picked = page.get_by_text(PARTITION, exact=True).filter(visible=True).first  # the detail pane's title
    expect(picked).to_be_visible(timeout=UI_TIMEOUT_MS)

    page.get_by_role("button", name="Materialize…").click()  # its name also holds its icon's label
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    launch = dialog.get_by_role("button", name="Launch 1 run", exact=True)
    expect(launch).to_be_enabled(timeout=UI_TIMEOUT_MS)  # the dialog holds the picked partition only
    expect(dialog).to_contain_text("1 partition", timeout=UI_TIMEOUT_MS)
    launch.click()
    expect(dialog).to_be_hidden(timeout=UI_TIMEOUT_MS)

    # The "Launched run … View" toast goes away after a few seconds: follow its link's address
    # (what clicking View does) instead of racing the toast with a click.
    href = page.get_by_role("link", name="View", exact=True).get_attribute("href", timeout=UI_TIMEOUT_MS)
    match = re.fullmatch(r"/runs/([0-9a-f-]{36})", href or "")
    assert match, f"the launch toast's View link is {href!r}"
    run_id = match.group(1)
    page.goto(f"{ui_url}{href}")
    status = page.get_by_text(RUN_ENDED).first
    expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
    ended = status.inner_text()
    assert ended == "Success", f"run {run_id} ended {ended}:\n{run_failure(home, run_id)}"

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        run = instance.get_run_by_id(run_id)
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        partitions = {r.tags.get("dagster/partition") for r in runs}
    assert run is not None
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags.get("dagster/partition") == PARTITION
    assert PARTITION in partitions
