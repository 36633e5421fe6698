"""Migrating a one-file warehouse to one file per market: every row kept, nothing mixed, the old file kept."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from factory_assets.core.migrate import MigrationError, split_warehouse
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.warehouse import LegacyWarehouseError


def legacy_warehouse(path: Path, extra_sql: str = "") -> None:
    """A one-file warehouse: two markets' CARs, records keyed by market, a per-cell table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    for schema in ("car", "ops", "release", "registry", "prep"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table car.uk as select range as customer_id, date '2026-01-31' as snapshot_date from range(5)"
    )
    con.execute(
        "create table car.de as select range as customer_id, date '2026-01-31' as snapshot_date from range(3)"
    )
    con.execute(
        "create table release.releases as select * from (values ('uk', 'churn', 'r1'), "
        "('uk', 'churn', 'r2'), "
        "('de', 'churn', 'r3')) t(market, model, release_id)"
    )
    con.execute(
        "create table registry.decisions as select * from (values ('uk', 'churn', 'keep'), ('de', 'churn', "
        "'replace')) t(market, model, outcome)"
    )
    con.execute("create table prep.tf__uk__churn as select 1 as customer_id")
    if extra_sql:
        con.execute(extra_sql)
    con.close()


def test_each_market_gets_its_rows_and_the_old_file_is_kept(tmp_path):
    paths = FactoryPaths(tmp_path / "data")
    legacy_warehouse(paths.legacy_warehouse)
    with pytest.raises(LegacyWarehouseError, match="factory migrate-warehouse"):
        paths.warehouses().market("uk")

    report = split_warehouse(paths.legacy_warehouse, paths.warehouses_unchecked())

    assert paths.warehouses().markets() == ["de", "uk"]
    assert report.rows["uk"] == {"car.uk": 5, "registry.decisions": 1, "release.releases": 2}
    assert report.rows["de"] == {"car.de": 3, "registry.decisions": 1, "release.releases": 1}
    assert report.rebuilt == ["prep.tf__uk__churn"], "per-cell tables are left to the preparation stages"
    uk = paths.warehouses().market("uk")
    assert uk.query("select release_id from release.releases order by 1")["release_id"].tolist() == [
        "r1",
        "r2",
    ]
    assert not uk.table_exists("car.de"), "another market's CAR never lands in this market's file"
    assert not paths.legacy_warehouse.exists()
    assert report.kept_as is not None and report.kept_as.exists(), "the old file is kept, renamed"
    union = paths.warehouses().union()
    assert len(union.query("select * from release.releases")) == 3


def test_a_table_without_market_is_refused_and_nothing_changes(tmp_path):
    paths = FactoryPaths(tmp_path / "data")
    legacy_warehouse(paths.legacy_warehouse, "create table ops.mystery as select 1 as x")
    with pytest.raises(MigrationError, match=r"\['ops.mystery'\] have no market column"):
        split_warehouse(paths.legacy_warehouse, paths.warehouses_unchecked())
    assert paths.legacy_warehouse.exists()
    assert paths.warehouses_unchecked().markets() == []


def test_a_second_migration_refuses_to_mix_layouts(tmp_path):
    paths = FactoryPaths(tmp_path / "data")
    legacy_warehouse(paths.legacy_warehouse)
    split_warehouse(paths.legacy_warehouse, paths.warehouses_unchecked())
    legacy_warehouse(paths.legacy_warehouse)
    with pytest.raises(MigrationError, match="already holds market files"):
        split_warehouse(paths.legacy_warehouse, paths.warehouses_unchecked())
