"""Debian's Chromium for the browser tests, launched the way this workplace allows (no network)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Playwright

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


def launch_chromium(pw: Playwright) -> Browser:
    """Headless Chromium; fails (never skips) when it is missing: `make test` installs it."""
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/ensure_chromium.sh (make test does)"
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
