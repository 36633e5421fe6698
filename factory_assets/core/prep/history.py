"""A market's history features, computed once for every spec that asks and kept current: `prep.history`.

One row per CAR row (market, customer_id, snapshot_date) and one DOUBLE column per history feature
(`features.HistoryFeature`): the union of what the specs asked for so far. Every model of the market
reads its history features from here, joined on (customer_id, snapshot_date), instead of computing
its own copy. Two small tables say what the history holds:
- `prep.history_snapshots`: per market and snapshot, the CAR version (rows, latest `_written_at`)
  the rows were computed from;
- `prep.history_features`: per market and feature, its definition (the SQL), and the run that
  computed the column for every row.

`refresh_history` brings the history up to date with the CAR and the specs, doing only what changed:
- a feature nobody computed yet (or whose definition changed) is added as a column and computed for
  every row; the other columns are not touched;
- snapshots added, restated or removed since (the CAR versions differ): every row from the earliest
  changed month on is recomputed, for every feature. History reads only earlier months, so rows before
  that month cannot change; the input starts `reach` months earlier (the longest lag or window), and
  recency carries the last month > 0 from the stored rows before the input.
Everything is written in one transaction: a crash leaves the previous history, and the rerun finds
the same work to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb

from factory_assets.core.names import Table, car_table, partition_label
from factory_assets.core.prep.features import HistoryFeature, plan_features, window_clause
from factory_assets.core.prep.sql import (
    BUILD_MEMORY_LIMIT,
    CUSTOMER,
    MONTH_INDEX,
    SNAPSHOT,
    PrepError,
    bounded,
    is_numeric,
    kind_of,
    literal,
    month_index,
    quote,
    table_columns,
)
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse, transaction

_KEYS = f"market varchar, {CUSTOMER} varchar, {SNAPSHOT} date"
_LINEAGE = "_run_id varchar, _written_at timestamp"
_SNAPSHOT_COLUMNS = f"market varchar, {SNAPSHOT} date, car_rows bigint, car_written_at varchar, {_LINEAGE}"
_FEATURE_COLUMNS = (
    f"market varchar, feature varchar, source varchar, kind varchar, months integer, definition varchar, "
    f"{_LINEAGE}"
)
_NOW = "current_timestamp::timestamp"
CarVersions = dict[dt.date, tuple[int, str | None]]


@dataclass(frozen=True)
class HistorySummary:
    """What `refresh_history` did for a market: the UI's account of the shared history."""

    market: str
    computed: list[str] = field(default_factory=list)
    """Feature columns computed for every row (new, or their definition changed)."""
    refreshed_from: dt.date | None = None
    """The earliest snapshot whose rows were recomputed (None: no row was)."""
    rows: int = 0
    """Rows (re)computed from `refreshed_from` on."""
    features: int = 0
    """Features the market's history holds."""
    built: bool = False
    """The market had no history: every row and column was computed."""

    @property
    def action(self) -> str:
        """`built`, `current` (nothing to do), `extended`, `refreshed` or `extended, refreshed`."""
        if self.built:
            return "built"
        steps = (("extended", bool(self.computed)), ("refreshed", self.refreshed_from is not None))
        done = [name for name, did in steps if did]
        return ", ".join(done) or "current"

    def metadata(self) -> dict[str, object]:
        """The history's part of the `training_frame` report."""
        return {
            "history_table": partition_label(Table.HISTORY, market=self.market),
            "history_action": self.action,
            "history_features": self.features,
            "history_computed": len(self.computed),
            "history_refreshed_from": str(self.refreshed_from) if self.refreshed_from else "",
            "history_rows_computed": self.rows,
        }


def definition(feature: HistoryFeature) -> str:
    """What a feature's values depend on besides the CAR: its SQL and its window (stored, compared)."""
    return f"{feature.sql()} {window_clause([feature])}"


def wanted_features(
    specs: Iterable[ModelSpec], columns: dict[str, str], market: str
) -> dict[str, HistoryFeature]:
    """The union of the history features `specs` ask for; a spec that cannot be planned raises."""
    wanted: dict[str, HistoryFeature] = {}
    for spec in specs:
        plan = plan_features(spec, columns, frozenset(), f"{market}/{spec.name}")
        wanted.update({f.name: f for f in plan.history_features})
    return wanted


def car_versions(con: duckdb.DuckDBPyConnection, car: str, columns: dict[str, str]) -> CarVersions:
    """Per CAR snapshot: its rows and latest `_written_at` (what a restatement changes)."""
    written = "cast(max(_written_at) as varchar)" if "_written_at" in columns else "null"
    rows = con.execute(
        f"select cast({SNAPSHOT} as date), count(*), {written} from {car} group by 1"
    ).fetchall()
    return {day: (int(n), stamp) for day, n, stamp in rows}


def _stored_versions(con: duckdb.DuckDBPyConnection, market: str) -> CarVersions:
    if not table_columns(con, Table.HISTORY_SNAPSHOTS):
        return {}
    rows = con.execute(
        f"select {SNAPSHOT}, car_rows, car_written_at from {Table.HISTORY_SNAPSHOTS} where market = ?",
        [market],
    ).fetchall()
    return {day: (int(n), stamp) for day, n, stamp in rows}


def _stored_features(con: duckdb.DuckDBPyConnection, market: str) -> dict[str, tuple[HistoryFeature, str]]:
    """Features computed for the market: name -> (feature, stored definition); only columns that exist."""
    present = table_columns(con, Table.HISTORY)
    if not present or not table_columns(con, Table.HISTORY_FEATURES):
        return {}
    rows = con.execute(
        f"select feature, source, kind, months, definition from {Table.HISTORY_FEATURES} where market = ?",
        [market],
    ).fetchall()
    return {
        name: (HistoryFeature(name, source, kind, int(months)), stored)
        for name, source, kind, months, stored in rows
        if name in present
    }


def changed_from(stored: CarVersions, current: CarVersions) -> int | None:
    """The earliest month whose CAR snapshot was added, restated or removed since; None if none was."""
    changed = [day for day in {*stored, *current} if stored.get(day) != current.get(day)]
    return min(month_index(day) for day in changed) if changed else None


def _input_sql(car: str, features: list[HistoryFeature], since: int | None) -> str:
    """The window input: keys, month number and each source column as DOUBLE (from month `since`)."""
    names = dict.fromkeys(f.source for f in features)
    sources = ", ".join(f"cast({quote(s)} as double) as {quote(s)}" for s in names)
    where = f"where {MONTH_INDEX} >= {int(since)}" if since is not None else ""
    return (
        f"select cast({CUSTOMER} as varchar) as _cid, cast({SNAPSHOT} as date) as _sd, {MONTH_INDEX} as _mi, "
        f"{sources} from {car} {where}"
    )


def _carry_sql(features: list[HistoryFeature], market: str, before: int) -> str:
    """Per customer, the last month > 0 of each recency feature's source before month `before`."""
    lasts = ", ".join(f"max({MONTH_INDEX} - {quote(f.name)}) as {_carried(f)}" for f in features)
    return (
        f"select {CUSTOMER} as _cid, {lasts} from {Table.HISTORY} where market = {literal(market)} "
        f"and {MONTH_INDEX} < {int(before)} group by 1"
    )


def _carried(feature: HistoryFeature) -> str:
    return quote(f"_carry_{feature.name}")


def history_sql(
    car: str, features: list[HistoryFeature], market: str, since: int | None = None, rows: str = "true"
) -> str:
    """The history of `features` per CAR row (customer_id, snapshot_date, _mi, one column each).

    `since` starts the input that many months back from the rows recomputed (see the module); `rows`
    filters the rows returned (on `_mi`).
    """
    recency = [f for f in features if f.kind == "recency"]
    carry = since is not None and bool(recency)
    carried = {f.name: _carried(f) for f in recency} if carry else {}
    exprs = ", ".join(f"{f.sql(carried.get(f.name))} as {quote(f.name)}" for f in features)
    source = f"({_input_sql(car, features, since)}) i"
    if carry:
        source += f" left join ({_carry_sql(recency, market, since)}) k using (_cid)"
    return (
        f"select * from (select _cid as {CUSTOMER}, _sd as {SNAPSHOT}, _mi, {exprs} from {source} "
        f"{window_clause(features)}) where {rows}"
    )


@dataclass(frozen=True)
class _Work:
    """What a refresh has to do for a market."""

    market: str
    car: str
    new: list[HistoryFeature]
    """Features to compute for every row (missing, or their definition changed)."""
    all: list[HistoryFeature]
    """Every feature the history will hold (stored and new)."""
    since: int | None
    """The earliest changed month (rows from it on are recomputed); None: no snapshot changed."""
    full: bool
    """No history yet: compute every row."""
    versions: CarVersions
    forgotten: list[str]
    """Stored features whose source column the CAR no longer holds as a number: no longer computed."""


def car_columns(con: duckdb.DuckDBPyConnection, market: str) -> dict[str, str]:
    """The market's CAR columns and types; raise if the CAR table does not exist yet."""
    car = car_table(market)
    columns = table_columns(con, car)
    if not columns:
        raise PrepError(f"{market}: the CAR table {car} does not exist (car_snapshots has not run)")
    return columns


def _plan(con: duckdb.DuckDBPyConnection, market: str, specs: Iterable[ModelSpec]) -> _Work:
    car = car_table(market)
    columns = car_columns(con, market)
    wanted = wanted_features(specs, columns, market)
    stored = _stored_features(con, market)
    new = [f for name, f in wanted.items() if name not in stored or stored[name][1] != definition(f)]
    # A stored feature no spec asks for any more stays (and stays current) while its source exists.
    unwanted = [f for name, (f, _) in stored.items() if name not in wanted]
    kept = [f for f in unwanted if f.source in columns and is_numeric(kind_of(columns[f.source]))]
    forgotten = [f.name for f in unwanted if f not in kept]
    versions = car_versions(con, car, columns)
    previous = _stored_versions(con, market)
    full = not previous
    since = None if full else changed_from(previous, versions)
    features = [*kept, *wanted.values()]
    return _Work(market, car, new, features, since, full, versions, forgotten)


def _add_columns(con: duckdb.DuckDBPyConnection, features: list[HistoryFeature]) -> None:
    con.execute("create schema if not exists prep")
    con.execute(f"create table if not exists {Table.HISTORY} ({_KEYS}, {_LINEAGE})")
    for feature in features:
        con.execute(f"alter table {Table.HISTORY} add column if not exists {quote(feature.name)} double")


def _extend(con: duckdb.DuckDBPyConnection, work: _Work) -> None:
    """Compute the new columns for the stored rows (those before the changed month, if any)."""
    rows = f"_mi < {work.since}" if work.since is not None else "true"
    computed = history_sql(work.car, work.new, work.market, rows=rows)
    sets = ", ".join(f"{quote(f.name)} = n.{quote(f.name)}" for f in work.new)
    con.execute(
        f"update {Table.HISTORY} h set {sets} from ({computed}) n where h.market = ? "
        f"and h.{CUSTOMER} = n.{CUSTOMER} and h.{SNAPSHOT} = n.{SNAPSHOT}",
        [work.market],
    )


def _recompute(con: duckdb.DuckDBPyConnection, work: _Work, run_id: str) -> int:
    """Replace every row from the changed month on (every row for a first build); return the count."""
    start = None if work.full else work.since
    reach = max((f.reach or 0 for f in work.all), default=0)
    since = None if start is None else start - reach
    rows = "true" if start is None else f"_mi >= {start}"
    computed = history_sql(work.car, work.all, work.market, since, rows)
    where = "" if start is None else f"and {MONTH_INDEX} >= {start}"
    con.execute(f"delete from {Table.HISTORY} where market = ? {where}", [work.market])
    names = ", ".join(quote(f.name) for f in work.all)
    select = ", ".join(f"n.{quote(f.name)}" for f in work.all)
    count = con.execute(
        f"insert into {Table.HISTORY} (market, {CUSTOMER}, {SNAPSHOT}, {names}, _run_id, _written_at) "
        f"select ?, n.{CUSTOMER}, n.{SNAPSHOT}, {select}, ?, {_NOW} from ({computed}) n",
        [work.market, run_id],
    ).fetchone()
    return int(count[0]) if count else 0


def _record(con: duckdb.DuckDBPyConnection, work: _Work, run_id: str) -> None:
    """The CAR versions the rows now reflect, and the definition of each column computed now."""
    con.execute(f"create table if not exists {Table.HISTORY_SNAPSHOTS} ({_SNAPSHOT_COLUMNS})")
    con.execute(f"create table if not exists {Table.HISTORY_FEATURES} ({_FEATURE_COLUMNS})")
    con.execute(f"delete from {Table.HISTORY_SNAPSHOTS} where market = ?", [work.market])
    versions = [[work.market, day, n, stamp, run_id] for day, (n, stamp) in sorted(work.versions.items())]
    if versions:
        con.executemany(f"insert into {Table.HISTORY_SNAPSHOTS} values (?, ?, ?, ?, ?, {_NOW})", versions)
    for name in [*work.forgotten, *(f.name for f in work.new)]:
        con.execute(
            f"delete from {Table.HISTORY_FEATURES} where market = ? and feature = ?", [work.market, name]
        )
    for f in work.new:
        con.execute(
            f"insert into {Table.HISTORY_FEATURES} values (?, ?, ?, ?, ?, ?, ?, {_NOW})",
            [work.market, f.name, f.source, f.kind, f.months, definition(f), run_id],
        )


def refresh_history(
    con: duckdb.DuckDBPyConnection,
    market: str,
    specs: Iterable[ModelSpec],
    run_id: str,
    memory_limit: str | None = BUILD_MEMORY_LIMIT,
) -> HistorySummary:
    """Bring the market's history up to date with its CAR and `specs`, in one transaction (see the module)."""
    work = _plan(con, market, specs)
    refresh = bool(work.all) and (work.full or work.since is not None)
    if not (work.new or work.forgotten or refresh):
        return HistorySummary(market, features=len(work.all))
    bounded(con, memory_limit)
    with transaction(con):
        _add_columns(con, work.all)
        if work.new and not work.full:
            _extend(con, work)
        rows = _recompute(con, work, run_id) if refresh else 0
        _record(con, work, run_id)
    first = _first_recomputed(work) if refresh else None
    return HistorySummary(market, [f.name for f in work.new], first, rows, len(work.all), work.full)


def _first_recomputed(work: _Work) -> dt.date | None:
    """The earliest CAR snapshot whose history rows a refresh recomputes (None: none)."""
    if work.full:
        return min(work.versions, default=None)
    if work.since is None:
        return None
    return min((d for d in work.versions if month_index(d) >= work.since), default=None)


@dataclass(frozen=True)
class RowHistory:
    """What building a market row's history at once did: the refresh, and the specs it covered."""

    summary: HistorySummary
    specs: list[str]
    """The specs whose features the refresh computed (or found current)."""
    left_out: dict[str, str]
    """Spec -> why its features cannot be planned; that spec's own `training_frame` raises the same."""

    def metadata(self) -> dict[str, object]:
        """The row's part of each of its cells' `training_frame` report."""
        return {
            "history_row_action": self.summary.action,
            "history_row_models": len(self.specs),
            "history_row_left_out": ", ".join(f"{k} ({v})" for k, v in self.left_out.items()),
        }


def plannable(
    specs: Iterable[ModelSpec], columns: dict[str, str], market: str
) -> tuple[list[ModelSpec], dict[str, str]]:
    """(specs whose history features can be planned on these CAR columns, the others with the reason)."""
    good: list[ModelSpec] = []
    bad: dict[str, str] = {}
    for spec in specs:
        try:
            plan_features(spec, columns, frozenset(), f"{market}/{spec.name}")
        except PrepError as exc:
            bad[spec.name] = str(exc)
        else:
            good.append(spec)
    return good, bad


def build_row_history(
    warehouse: Warehouse,
    market: str,
    specs: Iterable[ModelSpec],
    run_id: str,
    memory_limit: str | None = BUILD_MEMORY_LIMIT,
) -> RowHistory:
    """The history of a market's row of cells, before they run: one refresh for the union of `specs`.

    One pass over the CAR instead of one per cell that asks for more. A spec whose features cannot
    be planned (a column the CAR lacks, a name that clashes) is left out, not fatal to the row: its
    cell's own refresh raises the same error and fails that cell alone. Anything else raises.
    """
    specs = list(specs)

    def action(con: duckdb.DuckDBPyConnection) -> RowHistory:
        good, bad = plannable(specs, car_columns(con, market), market)
        summary = refresh_history(con, market, good, run_id, memory_limit)
        return RowHistory(summary, [s.name for s in good], bad)

    return warehouse.execute(action)


def build_market_history(
    warehouse: Warehouse,
    market: str,
    specs: Iterable[ModelSpec],
    run_id: str,
    memory_limit: str | None = BUILD_MEMORY_LIMIT,
) -> HistorySummary:
    """The market's history features for every spec in `specs`, computed only where missing or stale.

    `refresh_history` on a connection of its own, for callers that hold none (tests, tools). The
    stage calls `refresh_history` itself: `build_row_history` once with every plannable spec of the
    row, then each cell's `training_frame` with its spec (a spec nobody computed for yet extends the
    history with its missing features only).
    """
    specs = list(specs)
    return warehouse.execute(lambda con: refresh_history(con, market, specs, run_id, memory_limit))
