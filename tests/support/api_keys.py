"""API keys for tests: a keys file with a key for every market and one scoped to a market."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from serving.api import KEY_HEADER
from serving.keys import add_key

CREATED = dt.datetime(2026, 1, 5, 9)


@dataclass(frozen=True)
class TestKeys:
    """A keys file and the keys it holds the hashes of (the keys themselves live only here)."""

    __test__ = False  # not a test class, despite its name

    file: Path
    every_market: str
    scoped: str
    scoped_market: str

    @property
    def headers(self) -> dict[str, str]:
        """Headers that carry the every-market key."""
        return {KEY_HEADER: self.every_market}

    def scoped_headers(self) -> dict[str, str]:
        """Headers that carry the key scoped to `scoped_market`."""
        return {KEY_HEADER: self.scoped}


def make_keys(folder: Path, scoped_market: str = "uk") -> TestKeys:
    """A keys file under `folder` with an every-market key and a key scoped to `scoped_market`."""
    path = Path(folder) / "config" / "api_keys.yaml"
    every, _ = add_key(path, "tests: every market", [], CREATED)
    scoped, _ = add_key(path, f"tests: {scoped_market} only", [scoped_market], CREATED)
    return TestKeys(path, every, scoped, scoped_market)
