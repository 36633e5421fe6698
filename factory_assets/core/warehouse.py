"""The DuckDB warehouse: short-lived connections, atomic per-partition writes, lock retries.

DuckDB allows one writing process per file. Every public method opens a connection, does its work
and closes it, unless the caller holds a `session()` (one connection for a burst of calls, as a
stage step does), and no connection is held while a model trains (`released()`); a lock held by
another process is retried with jittered exponential backoff and reported clearly when it persists.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

from factory_assets.core.clock import utc_now

log = logging.getLogger(__name__)
T = TypeVar("T")
IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
LINEAGE_COLUMNS = ("_run_id", "_written_at")
LOCK_WAIT = "warehouse lock wait:"
"""Logged each time a connection waits for another process's lock (counted by the concurrency test)."""


_THREAD = threading.local()


def _open_sessions() -> dict[Path, duckdb.DuckDBPyConnection]:
    """The calling thread's session connections by warehouse file (module-level: Warehouse pickles)."""
    if not hasattr(_THREAD, "sessions"):
        _THREAD.sessions = {}
    return _THREAD.sessions


def _active_sessions() -> set[Path]:
    """The warehouse files the calling thread is inside a `session()` of (connection open or not)."""
    if not hasattr(_THREAD, "active"):
        _THREAD.active = set()
    return _THREAD.active


class WarehouseLockedError(RuntimeError):
    """The warehouse file stayed locked by another process through every retry."""


def check_identifier(name: str) -> str:
    """Table and column names are built into SQL; only plain lower-case identifiers pass."""
    if not IDENT.match(name):
        raise ValueError(f"'{name}' is not a valid warehouse identifier ({IDENT.pattern})")
    return name


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, _, name = check_identifier(table).rpartition(".")
    sql = "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?"
    found = con.execute(sql, [schema or "main", name]).fetchone()
    return bool(found and found[0])


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of `schema.table` (or `table` in main), in table order; {} if absent.

    Reads this table's catalog entry only: `information_schema.columns` lists every column of every
    table first, ~0.1 s per call once the warehouse holds a 22 x 18 grid (68k columns).
    """
    if not _exists(con, table):
        return {}
    rows = con.execute(f"select name, type from pragma_table_info('{table}') order by cid").fetchall()
    return {column: str(kind) for column, kind in rows}


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One explicit transaction on `con`: committed when the block ends, rolled back if it raises."""
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


@dataclass(frozen=True)
class PartitionCopy:
    """A partition of another table, replaced with some columns of a write (see `replace_partition`)."""

    table: str
    columns: Sequence[str]
    """Columns copied from the written rows; they must include the columns of `partition`."""
    partition: Mapping[str, Any]

    def check(self) -> None:
        """Refuse identifiers that are not plain names, and a partition the copied rows cannot fill."""
        check_identifier(self.table)
        for column in [*self.columns, *self.partition]:
            check_identifier(column)
        missing = [c for c in self.partition if c not in self.columns]
        if missing:
            raise ValueError(f"copy into {self.table}: partition column(s) {missing} are not copied")


def _replace(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    partition: Mapping[str, Any],
    source_params: list[Any] | None = None,
) -> None:
    """Within the caller's transaction: create `table` from `source` if new, then swap the partition."""
    schema = table.rpartition(".")[0]
    if schema:
        con.execute(f"create schema if not exists {schema}")
    params = source_params or []
    con.execute(f"create table if not exists {table} as select * from ({source}) limit 0", params)
    where = " and ".join(f"{c} = ?" for c in partition)
    con.execute(f"delete from {table} where {where}", list(partition.values()))
    con.execute(f"insert into {table} by name {source}", params)


class Warehouse:
    """One DuckDB file; every write is a transaction that owns exactly one partition's rows."""

    def __init__(
        self, path: Path, retries: int = 60, base_delay: float = 0.05, max_delay: float = 3.0
    ) -> None:
        self.path = Path(path)
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay

    def _with_retry(self, action: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        with self.connect() as con:
            return action(con)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection for reads and ad-hoc SQL; close it before long work.

        Inside `session()` this is the session's connection, and leaving the block keeps it open.
        """
        shared = _open_sessions().get(self.path)
        if shared is not None:
            yield shared
            # A shared connection refuses new work while a result is unread (`fetchone()` of a
            # query): run it to its end so the next call finds the connection free. (After an
            # error the session ends with the exception, so nothing is left to complete.)
            shared.complete()
            return
        con = self._connect_with_retry()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Every call on this warehouse file inside the block, in this thread, shares one connection.

        Opening and closing a connection costs ~20-30 ms, and more as the catalog grows (see
        `bench/bench_catalog.py`); a stage made ~10-30 small reads and writes per cell. A session
        holds DuckDB's file lock, which blocks other processes: use it around a burst of warehouse
        calls, and wrap long work inside it (a model fit, a report) in `released()`. Sessions nest;
        the outermost one closes.
        """
        sessions, active = _open_sessions(), _active_sessions()
        if self.path in active:
            if self.path not in sessions:  # a `released()` block raised and left it closed
                sessions[self.path] = self._connect_with_retry()
            yield
            return
        sessions[self.path] = self._connect_with_retry()
        active.add(self.path)
        try:
            yield
        finally:
            active.discard(self.path)
            con = sessions.pop(self.path, None)
            if con is not None:
                con.close()

    def renew_session(self) -> None:
        """Inside a session, replace its connection with a fresh one; outside one, do nothing.

        For after a failure that may have broken the connection, or left it closed in `released()`.
        """
        if self.path not in _active_sessions():
            return
        sessions = _open_sessions()
        con = sessions.pop(self.path, None)
        if con is not None:
            con.close()
        sessions[self.path] = self._connect_with_retry()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Inside a session, close its connection for the block (long work) and reopen it after.

        Outside a session this does nothing. Calls inside the block get short connections of their
        own. If the block raises, the connection stays closed: later calls open their own.
        """
        sessions = _open_sessions()
        con = sessions.pop(self.path, None)
        if con is None:
            yield
            return
        con.close()
        yield
        sessions[self.path] = self._connect_with_retry()

    def _connect_with_retry(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random()
        for attempt in range(self.retries + 1):
            try:
                return duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise
                if attempt == self.retries:
                    raise WarehouseLockedError(
                        f"warehouse {self.path} still locked after {self.retries} retries: {exc}"
                    ) from exc
                delay = min(self.max_delay, self.base_delay * 2**attempt)
                log.info("%s %s (retry %d)", LOCK_WAIT, self.path, attempt + 1)
                time.sleep(delay * (0.5 + rng.random()))
        raise AssertionError("unreachable")

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read query and return a DataFrame (the connection is closed before returning)."""
        return self._with_retry(lambda con: con.execute(sql, params or []).df())

    def table_exists(self, table: str) -> bool:
        """True if `schema.table` (or `table` in main) exists."""
        return self.execute(lambda con: _exists(con, table))

    def replace_partition(
        self,
        table: str,
        frame: pd.DataFrame,
        partition: Mapping[str, Any],
        run_id: str,
        copies: Sequence[PartitionCopy] = (),
    ) -> int:
        """Atomically replace the rows of `partition` in `table` with `frame` plus lineage.

        The table is created from the frame's columns on first write. Delete and insert run in one
        transaction: a crash leaves the previous rows, a rerun replaces exactly what it owns. Each of
        `copies` replaces a partition of another table with columns of the rows just written, in
        the same transaction (one write of the data instead of a second frame).
        """
        check_identifier(table)
        for column in partition:
            check_identifier(column)
        for copy in copies:
            copy.check()
        data = frame.assign(**{k: v for k, v in partition.items() if k not in frame.columns})
        data = data.assign(_run_id=run_id, _written_at=utc_now())
        where = " and ".join(f"{c} = ?" for c in partition)

        def write(con: duckdb.DuckDBPyConnection) -> int:
            con.register("_incoming", data)
            with transaction(con):
                _replace(con, table, "select * from _incoming", partition)
                for copy in copies:
                    columns = ", ".join([*copy.columns, *LINEAGE_COLUMNS])
                    source = f"select {columns} from {table} where {where}"
                    _replace(con, copy.table, source, copy.partition, list(partition.values()))
            return len(data)

        return self._with_retry(write)

    def replace_partitions(
        self, writes: Sequence[tuple[str, pd.DataFrame, Mapping[str, Any]]], run_id: str
    ) -> None:
        """Replace several partitions, each `(table, frame, partition)`, in one transaction.

        Either every write is committed or none (e.g. a CAR snapshot, its ledger row and its verdict).
        """
        stamp = utc_now()
        prepared = []
        for table, frame, partition in writes:
            check_identifier(table)
            for column in partition:
                check_identifier(column)
            data = frame.assign(**{k: v for k, v in partition.items() if k not in frame.columns})
            prepared.append((table, data.assign(_run_id=run_id, _written_at=stamp), partition))

        def write(con: duckdb.DuckDBPyConnection) -> None:
            for i, (_, data, _) in enumerate(prepared):
                con.register(f"_incoming_{i}", data)
            with transaction(con):
                for i, (table, _, partition) in enumerate(prepared):
                    _replace(con, table, f"select * from _incoming_{i}", partition)

        self._with_retry(write)

    def execute(self, action: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `action` on a fresh connection with lock retries; for multi-statement work."""
        return self._with_retry(action)


class LegacyWarehouseError(RuntimeError):
    """A warehouse file of the one-file layout sits where the per-market layout is expected."""


class MarketWarehouses:
    """The deployment's warehouse: one DuckDB file per market, `<root>/<market>.duckdb`.

    DuckDB allows one writing process per file, so a file per market means that two market rows
    never wait for each other's lock, and a connection loads only its market's catalog (its cost
    stays flat as markets are added). Every table inside keeps its `market` column, so a file could
    hold several markets and the core's per-cell code does not know the layout. Reads across
    markets (the status grid) go through `union()`.
    """

    def __init__(self, root: Path, retries: int = 60, legacy_file: Path | None = None) -> None:
        self.root = Path(root)
        self.retries = retries
        self.legacy_file = legacy_file

    def _check_layout(self) -> None:
        if self.legacy_file is not None and self.legacy_file.exists() and not self.markets():
            raise LegacyWarehouseError(
                f"{self.legacy_file} is a warehouse of the one-file layout and {self.root} holds no "
                "market file yet: run `factory migrate-warehouse` to split it per market (released "
                "scores and decision history are kept), then rerun"
            )

    def market(self, market: str) -> Warehouse:
        """The warehouse file of `market` (created on first write)."""
        self._check_layout()
        if not IDENT.match(market) or "." in market:
            raise ValueError(f"'{market}' is not a valid market for a warehouse file ({IDENT.pattern})")
        return Warehouse(self.root / f"{market}.duckdb", retries=self.retries)

    def markets(self) -> list[str]:
        """The markets that have a warehouse file, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.duckdb"))

    def union(self, markets: Sequence[str] | None = None) -> UnionWarehouse:
        """A read-only view over the files of `markets` (default: every market with a file).

        The files are listed at each connection, so a view made before a market's first write
        sees it afterwards.
        """
        self._check_layout()
        return UnionWarehouse(self, None if markets is None else list(markets))


class UnionWarehouse(Warehouse):
    """Several warehouse files read as one: each table is a view over its rows in every file.

    The files are attached read-only to an in-memory database; a table present in several files is
    the `union all by name` of them (columns missing in one file read as NULL). Writes fail.
    """

    def __init__(self, warehouses: MarketWarehouses, markets: list[str] | None = None) -> None:
        scope = "all" if markets is None else ",".join(markets)
        super().__init__(Path(f":union:{warehouses.root}:{scope}"), retries=warehouses.retries)
        self.warehouses = warehouses
        self.markets = markets

    @property
    def files(self) -> list[Path]:
        """The market files read: those of `markets` that exist (all, when `markets` is None)."""
        present = self.warehouses.markets()
        chosen = present if self.markets is None else [m for m in self.markets if m in present]
        return [self.warehouses.root / f"{m}.duckdb" for m in chosen]

    def _connect_with_retry(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:")
        try:
            tables: dict[str, list[str]] = {}
            for i, path in enumerate(self.files):
                alias = f"_m{i}"
                self._attach(con, path, alias)
                rows = con.execute(
                    "select schema_name, table_name from duckdb_tables() where database_name = ?", [alias]
                ).fetchall()
                for schema, name in rows:
                    tables.setdefault(f"{schema}.{name}", []).append(f"{alias}.{schema}.{name}")
            for table, sources in sorted(tables.items()):
                schema = table.partition(".")[0]
                con.execute(f"create schema if not exists {schema}")
                body = " union all by name ".join(f"select * from {s}" for s in sources)
                con.execute(f"create view {table} as {body}")
        except BaseException:
            con.close()
            raise
        return con

    def _attach(self, con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
        """Attach `path` read-only, retrying while a writing process holds its lock."""
        rng = random.Random()
        for attempt in range(self.retries + 1):
            try:
                con.execute(f"attach '{path}' as {alias} (read_only)")
                return
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc):
                    raise
                if attempt == self.retries:
                    raise WarehouseLockedError(
                        f"warehouse {path} still locked after {self.retries} retries: {exc}"
                    ) from exc
                delay = min(self.max_delay, self.base_delay * 2**attempt)
                log.info("%s %s (retry %d)", LOCK_WAIT, path, attempt + 1)
                time.sleep(delay * (0.5 + rng.random()))
