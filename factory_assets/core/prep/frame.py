"""The training frame of a cell: its rows and target, its candidate features and their cleaning.

`build_training_frame` first brings the market's history features up to date for the cell's spec
(`history.refresh_history`: computed once per market, extended with what this spec adds). It then
writes the cell's partition of `prep.frames` (market, model, customer_id, snapshot_date, target):
every eligible customer x snapshot whose outcome is known or not observable yet, target NULL where
it is unknown, and every eligible customer of the CAR's latest snapshot whatever their outcome,
since they are the scoring population (a label that is not known yet never drops a customer from
scoring). No feature is copied: the cell's candidates (base CAR columns and history features) are
read joined to these keys (`cell_data`). The cleaning measures the candidates on a sample of the
cell's labelled rows; its decisions go to `prep.variable_decisions`, and the candidates with their
grouped levels to `prep.frame_columns`. The rows are built in a temporary table, then the cell's
frame, decisions and columns are replaced in one transaction, so a failure leaves the previous ones.
Every candidate is kept, also the dropped ones: the decisions select the features, and a champion
trained earlier may still need a column the current decisions drop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import duckdb
import pandas as pd

from factory_assets.core.clock import utc_now
from factory_assets.core.names import Table, car_table
from factory_assets.core.prep.cell_data import (
    FRAMES_COLUMNS,
    cell_select,
    frame_columns,
    frames_label,
    replace_cell_rows,
    write_frame_columns,
)
from factory_assets.core.prep.cleaning import (
    SAMPLE_ROWS,
    SAMPLE_TABLE,
    CleaningResult,
    Decision,
    clean_variables,
    sample_keys_sql,
)
from factory_assets.core.prep.features import FeaturePlan, plan_features
from factory_assets.core.prep.history import HistorySummary, refresh_history
from factory_assets.core.prep.sql import (
    BUILD_MEMORY_LIMIT,
    CUSTOMER,
    MONTH_INDEX,
    SNAPSHOT,
    TARGET,
    PrepError,
    bounded,
    table_columns,
)
from factory_assets.core.prep.targets import TargetPlan, check_target_data, plan_target
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport
from factory_assets.core.warehouse import Warehouse, transaction

_ROWS = "_frame_rows"
"""The temporary table the cell's rows are built in before they replace its partition."""
_DECISION_COLUMNS = (
    "market varchar, model varchar, variable varchar, rule varchar, measured double, "
    "threshold double, decision varchar, reason varchar, _run_id varchar, _written_at timestamp"
)


@dataclass(frozen=True)
class FrameSummary:
    """What a training frame holds: the numbers the UI shows for the cell."""

    table: str
    rows: int
    labelled_rows: int
    positives: int
    snapshots: int
    labelled_snapshots: int
    first_snapshot: dt.date
    last_snapshot: dt.date
    scoring_snapshot: dt.date
    """The latest snapshot of the market's CAR: the snapshot the cell scores."""
    scoring_rows: int
    """Eligible customers at `scoring_snapshot` (the scoring population; 0 fails scoring)."""
    candidates: int
    decisions: list[Decision] = field(default_factory=list)
    history: HistorySummary | None = None
    """What refreshing the market's history did for this cell (shared by every model of the market)."""

    @property
    def dropped(self) -> list[Decision]:
        """The decisions that dropped a variable."""
        return [d for d in self.decisions if d.decision == "drop"]

    def metadata(self) -> dict[str, object]:
        """The stage report: counts, rate and the dropped variables with their reasons (a table)."""
        dropped = pd.DataFrame(
            [{"variable": d.variable, "rule": d.rule, "reason": d.reason} for d in self.dropped],
            columns=["variable", "rule", "reason"],
        )
        return {
            "table": self.table,
            "rows": self.rows,
            "labelled_rows": self.labelled_rows,
            "positives": self.positives,
            "target_rate": round(self.positives / self.labelled_rows, 6) if self.labelled_rows else 0.0,
            "snapshots": self.snapshots,
            "labelled_snapshots": self.labelled_snapshots,
            "first_snapshot": str(self.first_snapshot),
            "last_snapshot": str(self.last_snapshot),
            "scoring_snapshot": str(self.scoring_snapshot),
            "scoring_rows": self.scoring_rows,
            "candidate_features": self.candidates,
            "kept_features": self.candidates - len({d.variable for d in self.dropped if d.rule != "type"}),
            "dropped_count": len(dropped),
            "dropped_variables": dropped,
            **(self.history.metadata() if self.history else {}),
        }


def frame_sql(car: str, target: TargetPlan) -> str:
    """The SELECT of the cell's rows: customer_id, snapshot_date, target (see `targets`)."""
    h = target.horizon
    ctes = [
        f"c0 as (select *, cast({CUSTOMER} as varchar) as _cid, cast({SNAPSHOT} as date) as _sd, "
        f"{MONTH_INDEX} as _mi from {car})",
        f"outcome as (select _cid, _mi - {h} as _mi, {target.outcome} as _ov from c0)",
        f"observable as (select distinct _mi - {h} as _mi from c0)",
        "rows_t as (select c.*, o._ov, o._cid is not null as _present, ob._mi is not null as _observable "
        "from c0 c left join outcome o on o._cid = c._cid and o._mi = c._mi "
        f"left join observable ob on ob._mi = c._mi where {target.eligible})",
        f"labelled as (select *, {target.case} as _target from rows_t)",
    ]
    # Kept: rows with a known outcome (training), rows whose outcome snapshot is not in the CAR
    # yet, and the whole latest snapshot (the scoring population, whatever its outcome: a label
    # column is often NULL there). Dropped: earlier rows whose outcome is observable but unknown.
    return (
        f"with {', '.join(ctes)} select t._cid as {CUSTOMER}, t._sd as {SNAPSHOT}, "
        f"cast(t._target as integer) as {TARGET} from labelled t "
        "where t._target is not null or not t._observable or t._mi = (select max(_mi) from c0)"
    )


def _counts(con: duckdb.DuckDBPyConnection, table: str, scoring: dt.date) -> tuple[object, ...]:
    """rows, labelled rows, positives, snapshots, labelled snapshots, first, last, rows at `scoring`."""
    row = con.execute(
        f"select count(*), count({TARGET}), coalesce(sum({TARGET}), 0), count(distinct {SNAPSHOT}), "
        f"count(distinct {SNAPSHOT}) filter (where {TARGET} is not null), min({SNAPSHOT}), max({SNAPSHOT}), "
        f"count(*) filter (where {SNAPSHOT} = ?) from {table}",
        [scoring],
    ).fetchone()
    return tuple(row)


def _write_decisions(
    con: duckdb.DuckDBPyConnection, market: str, model: str, decisions: list[Decision], run_id: str
) -> None:
    frame = pd.DataFrame([d.__dict__ for d in decisions], columns=list(Decision.__dataclass_fields__))
    frame = frame.assign(market=market, model=model, _run_id=run_id, _written_at=utc_now())
    frame["measured"] = frame["measured"].astype(float)
    frame["threshold"] = frame["threshold"].astype(float)
    con.execute(f"create table if not exists {Table.VARIABLE_DECISIONS} ({_DECISION_COLUMNS})")
    con.execute(f"delete from {Table.VARIABLE_DECISIONS} where market = ? and model = ?", [market, model])
    con.register("_decisions", frame)
    con.execute(f"insert into {Table.VARIABLE_DECISIONS} by name select * from _decisions")
    con.unregister("_decisions")


@dataclass(frozen=True)
class _Options:
    run_id: str
    label_columns: frozenset[str]
    sample_rows: int
    memory_limit: str | None


@dataclass(frozen=True)
class _CellPlan:
    """What the cell reads from its CAR: its target, its candidate features, the scoring snapshot."""

    market: str
    spec: ModelSpec
    target: TargetPlan
    features: FeaturePlan
    scoring: dt.date


def _plan(con: duckdb.DuckDBPyConnection, market: str, spec: ModelSpec, opts: _Options) -> _CellPlan:
    """Plan the target and features on the CAR's columns; raise naming the cell before any write."""
    cell, car = f"{market}/{spec.name}", car_table(market)
    columns = table_columns(con, car)
    if not columns:
        raise PrepError(f"{cell}: the CAR table {car} does not exist (car_snapshots has not run)")
    target = plan_target(spec, columns, cell)
    scoring = check_target_data(con, car, target, cell)[-1]
    features = plan_features(spec, columns, opts.label_columns, cell)
    return _CellPlan(market, spec, target, features, scoring)


def _clean(con: duckdb.DuckDBPyConnection, plan: _CellPlan, opts: _Options) -> CleaningResult:
    """Measure every candidate on a sample of the cell's labelled rows (features joined) and decide."""
    keys = f"({sample_keys_sql(_ROWS, plan.spec.sampling.seed, opts.sample_rows)})"
    columns = frame_columns(plan.features.candidates, {})
    sample = cell_select(con, keys, [SNAPSHOT, TARGET], columns, plan.market)
    con.execute(f"create or replace temp table {SAMPLE_TABLE} as {sample}")
    return clean_variables(con, plan.features.candidates, plan.target.own_column, plan.spec.cleaning)


def _build(
    con: duckdb.DuckDBPyConnection, plan: _CellPlan, opts: _Options
) -> tuple[FrameSummary, CleaningResult]:
    """Build the cell's rows into `_ROWS`, count and clean them; nothing is written to the warehouse."""
    cell = f"{plan.market}/{plan.spec.name}"
    bounded(con, opts.memory_limit)
    con.execute(f"create or replace temp table {_ROWS} as {frame_sql(car_table(plan.market), plan.target)}")
    rows, labelled, positives, snapshots, labelled_snaps, first, last, scoring_rows = _counts(
        con, _ROWS, plan.scoring
    )
    if labelled == 0:
        raise PrepError(
            f"{cell}: no labelled rows: {rows} eligible rows in {snapshots} snapshots, none with "
            "an observable outcome (check the population filters and 'from' values)"
        )
    result = _clean(con, plan, opts)
    typed = [
        Decision(n, "type", None, None, "drop", f"unsupported type {t}")
        for n, t in plan.features.unsupported.items()
    ]
    counts = (rows, labelled, int(positives), snapshots, labelled_snaps, first, last, plan.scoring)
    table, candidates = frames_label(plan.market, plan.spec.name), len(plan.features.candidates)
    return FrameSummary(table, *counts, scoring_rows, candidates, typed + result.decisions), result


def _publish(
    con: duckdb.DuckDBPyConnection,
    plan: _CellPlan,
    summary: FrameSummary,
    result: CleaningResult,
    run_id: str,
) -> None:
    """Replace the cell's rows, decisions and frame columns, in one transaction."""
    market, model = plan.market, plan.spec.name
    columns = frame_columns(plan.features.candidates, result.groups)
    with transaction(con):
        replace_cell_rows(con, Table.FRAMES, FRAMES_COLUMNS, market, model, f"select * from {_ROWS}", run_id)
        _write_decisions(con, market, model, summary.decisions, run_id)
        write_frame_columns(con, market, model, columns, run_id)


def build_training_frame(
    warehouse: Warehouse,
    market: str,
    spec: ModelSpec,
    run_id: str,
    label_columns: frozenset[str] = frozenset(),
    sample_rows: int | None = None,
    memory_limit: str | None = BUILD_MEMORY_LIMIT,
) -> FrameSummary:
    """Build the cell's training frame and variable decisions; raise naming the cell.

    The market's history is brought up to date for the spec first (its own transaction: it is the
    market's, shared by every model). The cell's rows are built in a temporary table (a large CREATE
    runs about twice as fast outside an explicit transaction), then replace its partition together
    with the decisions and frame columns in one transaction: a failure at any point leaves the
    previous frame and decisions. `label_columns` are CAR columns that are labels, never features
    (the contract's role 'label'). `memory_limit` (DuckDB syntax, e.g. '2GB', None = DuckDB's
    default of 80% of RAM) bounds DuckDB's memory; beyond it, DuckDB spills to disk.
    """
    opts = _Options(run_id, label_columns, sample_rows or SAMPLE_ROWS, memory_limit)

    def action(con: duckdb.DuckDBPyConnection) -> FrameSummary:
        plan = _plan(con, market, spec, opts)
        history = refresh_history(con, market, [spec], run_id, memory_limit)
        try:
            summary, result = _build(con, plan, opts)
            _publish(con, plan, summary, result, run_id)
        finally:
            con.execute(f"drop table if exists {_ROWS}")
            con.execute(f"drop table if exists {SAMPLE_TABLE}")
        return replace(summary, history=history)

    return warehouse.execute(action)


def training_frame_stage(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """The `training_frame` stage of one cell: build the frame, report what was kept and dropped."""
    return build_training_frame(ctx.warehouse, market, spec, ctx.run_id, ctx.label_columns).metadata()
