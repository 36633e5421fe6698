"""Shared fixtures: a temporary data directory, warehouse, resources and Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage

from factory_assets.core.paths import FactoryPaths
from factory_assets.core.warehouse import MarketWarehouses, Warehouse
from resources import build_resources


@pytest.fixture(autouse=True)
def no_stale_defs_state_storage():
    """Each test starts without an ambient Dagster state storage.

    An instance used as a context manager publishes its state storage in a context variable; when
    instances close out of order across tests, a dead one can stay published and make the next
    `Definitions` load fail with "undefined DagsterInstance weakref".
    """
    with set_defs_state_storage(None):
        yield


@pytest.fixture
def paths(tmp_path: Path) -> FactoryPaths:
    """A fresh, empty factory data directory."""
    return FactoryPaths(tmp_path / "data")


@pytest.fixture
def warehouses(paths: FactoryPaths) -> MarketWarehouses:
    """The per-market warehouse files under the temporary data directory."""
    return paths.warehouses()


@pytest.fixture
def warehouse(paths: FactoryPaths) -> Warehouse:
    """The `uk` market's warehouse file under the temporary data directory (the tests' usual market)."""
    return paths.warehouses().market("uk")


@pytest.fixture
def resources(paths: FactoryPaths) -> dict[str, object]:
    """The factory's resources laid out under the temporary data directory."""
    return build_resources(paths.data_dir)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    """An ephemeral Dagster instance (fast; nothing persists)."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst
