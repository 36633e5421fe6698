"""Split a warehouse of the one-file layout into one DuckDB file per market.

Every table with a `market` column is split by market; `car.<market>` goes whole to its market. The
per-cell preparation tables of the old layout (`prep.tf__*`, `prep.samples__*`) are not copied: the
preparation stages rebuild them from the CAR. A table that is neither is refused, naming it, before
anything is written. The new files are written into a staging folder, their row counts checked
against the source, and only then moved into place; the old file is kept, renamed
`<name>.migrated`, so nothing is lost.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from factory_assets.core.warehouse import IDENT, MarketWarehouses, check_identifier

log = logging.getLogger(__name__)
REBUILT_PREFIXES = ("prep.tf__", "prep.samples__")
"""Per-cell tables of the old layout that the preparation stages rebuild (not copied)."""


class MigrationError(RuntimeError):
    """The one-file warehouse cannot be split as it is; nothing was changed."""


@dataclass
class MigrationReport:
    """What the split wrote: rows per market and table, and what it left to the stages."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    rebuilt: list[str] = field(default_factory=list)
    kept_as: Path | None = None


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() "
        "where database_name = current_database() order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def _plan(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """(market -> tables holding its rows, tables left to the stages, tables that cannot be split)."""
    by_market: dict[str, list[str]] = {}
    rebuilt, refused = [], []
    for table in _tables(con):
        schema, name = table.split(".", 1)
        columns = {r[0] for r in con.execute(f"select name from pragma_table_info('{table}')").fetchall()}
        if table.startswith(REBUILT_PREFIXES):
            rebuilt.append(table)
        elif schema == "car" and IDENT.match(name):
            by_market.setdefault(name, []).append(table)
        elif "market" in columns:
            for (market,) in con.execute(
                f"select distinct market from {table} where market is not null"
            ).fetchall():
                by_market.setdefault(str(market), []).append(table)
        else:
            refused.append(table)
    return by_market, rebuilt, refused


def _copy(source: Path, target: Path, market: str, tables: list[str]) -> dict[str, int]:
    """Copy `market`'s rows of `tables` from `source` into the new file `target`; rows per table."""
    con = duckdb.connect(str(target))
    counts: dict[str, int] = {}
    try:
        con.execute(f"attach '{source}' as legacy (read_only)")
        con.execute("begin transaction")
        for table in tables:
            schema = table.split(".", 1)[0]
            con.execute(f"create schema if not exists {schema}")
            where = "" if schema == "car" else "where market = ?"
            params = [] if schema == "car" else [market]
            con.execute(f"create table {table} as select * from legacy.{table} {where}", params)
            copied = con.execute(f"select count(*) from {table}").fetchone()[0]
            expected = con.execute(f"select count(*) from legacy.{table} {where}", params).fetchone()[0]
            if copied != expected:
                raise MigrationError(f"{table} of market '{market}': copied {copied} rows of {expected}")
            counts[table] = int(copied)
        con.execute("commit")
    finally:
        con.close()
    return counts


def split_warehouse(legacy: Path, warehouses: MarketWarehouses) -> MigrationReport:
    """Split the one-file warehouse `legacy` into `warehouses` (see the module docstring)."""
    if not legacy.exists():
        raise MigrationError(f"no one-file warehouse at {legacy}: nothing to migrate")
    if warehouses.markets():
        raise MigrationError(
            f"{warehouses.root} already holds market files {warehouses.markets()}: refusing to mix layouts"
        )
    duckdb.connect(str(legacy)).close()  # replays and checkpoints a leftover write-ahead log
    con = duckdb.connect(str(legacy), read_only=True)
    try:
        by_market, rebuilt, refused = _plan(con)
    finally:
        con.close()
    if refused:
        raise MigrationError(f"{legacy}: table(s) {refused} have no market column and are not CAR tables")
    staging = warehouses.root.with_name(warehouses.root.name + ".migrating")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    report = MigrationReport(rebuilt=rebuilt)
    for market, tables in sorted(by_market.items()):
        check_identifier(market)
        report.rows[market] = _copy(legacy, staging / f"{market}.duckdb", market, tables)
        log.info("migrated market %s: %s", market, report.rows[market])
    if warehouses.root.exists():
        warehouses.root.rmdir()  # empty: checked above that it holds no market file
    staging.rename(warehouses.root)
    report.kept_as = legacy.with_name(legacy.name + ".migrated")
    legacy.rename(report.kept_as)
    return report
