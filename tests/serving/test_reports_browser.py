"""The report pages in a real browser: the status page, a model card and its drift report, served by
the scoring API over a small built factory (one market, one released cell).

The factory is built in process (`support.reliability.cached_clean_build`) and its row run once more
(so drift is measured against a champion and Evidently writes its report), its reports written by
`core.status.reports.write_reports` (what `factory_status` calls), and the API served by uvicorn on
a free loopback port with a key sent by the browser context. The test waits on states the pages
reach (elements present), never on fixed sleeps; screenshots go to the test's temporary folder.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from support.api_keys import make_keys
from support.browser import launch_chromium
from support.reliability import MARKET, MODEL, cached_clean_build, copy_factory, new_instance, run_cell

from factory_assets.core.clock import utc_now
from factory_assets.core.model.store import ModelStore
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.status.grid import build_status
from factory_assets.core.status.reports import write_reports
from factory_assets.specs_registry import SPECS
from serving.api import create_app

TIMEOUT_MS = 60_000
CARD_CHARTS = ["gains", "lift", "calibration", "score_distribution", "importance"]


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    built = cached_clean_build(tmp_path_factory.getbasetemp())
    paths = copy_factory(built, tmp_path_factory.mktemp("reports_browser") / "data")
    with new_instance() as instance:  # a second run: drift is measured against the champion, with a report
        assert run_cell(paths, instance).success
    warehouse = paths.warehouses().union()
    grid = build_status(warehouse, [MARKET], [MODEL], utc_now(), {MODEL: 62})
    written = write_reports(
        warehouse,
        ReleaseStore(paths.releases),
        ModelStore(paths.models),
        SPECS,
        grid,
        paths.reports,
        utc_now(),
    )
    assert f"{MARKET}/{MODEL}" in written, written
    return paths


@pytest.fixture(scope="module")
def served(factory, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    keys = make_keys(tmp_path_factory.mktemp("deployment"))
    app = create_app(factory.releases, keys.file, factory.reports)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", keys.headers
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _points(page, chart: str) -> int:
    return page.locator(f'svg[data-chart="{chart}"] .point').count()


def test_status_page_links_a_card_with_drawn_charts_and_its_drift_report(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, headers = served
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            context = browser.new_context(extra_http_headers=headers, viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)

            page.goto(f"{base}/reports/status.html")
            row = page.locator(f'tr[data-market="{MARKET}"][data-model="{MODEL}"]')
            expect(row).to_have_count(1)
            expect(row.locator("svg.spark .point").first).to_be_attached()
            page.select_option("#filter-market", MARKET)
            expect(page.locator("#shown")).to_have_text("1")
            page.screenshot(path=str(tmp_path / "status.png"), full_page=True)

            row.locator("a.card-link").click()
            page.wait_for_url(f"**/reports/cards/{MARKET}/{MODEL}.html")
            expect(page.locator("h1")).to_contain_text(f"{MARKET} / {MODEL}")
            for chart in CARD_CHARTS:
                expect(page.locator(f'svg[data-chart="{chart}"] .point').first).to_be_attached()
                assert _points(page, chart) >= 3, chart
            page.screenshot(path=str(tmp_path / "card.png"), full_page=True)

            page.locator("a.drift-report").click()
            page.wait_for_url(f"**/reports/drift/{MARKET}/{MODEL}/*.html")
            expect(page.locator("body")).not_to_be_empty()
            page.screenshot(path=str(tmp_path / "drift.png"))
        finally:
            browser.close()

    assert all((tmp_path / name).stat().st_size > 0 for name in ("status.png", "card.png", "drift.png"))
