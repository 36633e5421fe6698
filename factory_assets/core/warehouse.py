"""The DuckDB warehouse: short-lived connections, atomic per-partition writes, lock retries.

DuckDB allows one writing process per file. Every public method opens a connection, does its work
and closes it, so no connection is held while a model trains; a lock held by another process is
retried with jittered exponential backoff and reported clearly when it persists.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

log = logging.getLogger(__name__)
T = TypeVar("T")
IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
LINEAGE_COLUMNS = ("_run_id", "_written_at")


class WarehouseLockedError(RuntimeError):
    """The warehouse file stayed locked by another process through every retry."""


def check_identifier(name: str) -> str:
    """Table and column names are built into SQL; only plain lower-case identifiers pass."""
    if not IDENT.match(name):
        raise ValueError(f"'{name}' is not a valid warehouse identifier ({IDENT.pattern})")
    return name


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


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
        con = self._connect_with_retry()
        try:
            return action(con)
        finally:
            con.close()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection for reads and ad-hoc SQL; close it before long work."""
        con = self._connect_with_retry()
        try:
            yield con
        finally:
            con.close()

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
                time.sleep(delay * (0.5 + rng.random()))
        raise AssertionError("unreachable")

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read query and return a DataFrame (the connection is closed before returning)."""
        return self._with_retry(lambda con: con.execute(sql, params or []).df())

    def table_exists(self, table: str) -> bool:
        """True if `schema.table` (or `table` in main) exists."""
        schema, _, name = check_identifier(table).rpartition(".")
        sql = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
        return bool(self.query(sql, [schema or "main", name]).iloc[0, 0])

    def replace_partition(
        self,
        table: str,
        frame: pd.DataFrame,
        partition: Mapping[str, Any],
        run_id: str,
    ) -> int:
        """Atomically replace the rows of `partition` in `table` with `frame` plus lineage.

        The table is created from the frame's columns on first write. Delete and insert run in one
        transaction: a crash leaves the previous rows, a rerun replaces exactly what it owns.
        """
        check_identifier(table)
        for column in partition:
            check_identifier(column)
        data = frame.assign(**{k: v for k, v in partition.items() if k not in frame.columns})
        data = data.assign(_run_id=run_id, _written_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))

        def write(con: duckdb.DuckDBPyConnection) -> int:
            con.register("_incoming", data)
            schema = table.rpartition(".")[0]
            con.execute("begin transaction")
            try:
                if schema:
                    con.execute(f"create schema if not exists {schema}")
                con.execute(f"create table if not exists {table} as select * from _incoming limit 0")
                where = " and ".join(f"{c} = ?" for c in partition)
                con.execute(f"delete from {table} where {where}", list(partition.values()))
                con.execute(f"insert into {table} by name select * from _incoming")
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
            return len(data)

        return self._with_retry(write)

    def execute(self, action: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `action` on a fresh connection with lock retries; for multi-statement work."""
        return self._with_retry(action)
