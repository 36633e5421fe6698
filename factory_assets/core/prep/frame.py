"""The training frame of a cell: target, base and history features, cleaning decisions, in DuckDB.

`build_training_frame` writes `prep.tf__<market>__<model>` (every eligible customer x snapshot
whose outcome is known or not observable yet, target NULL where it is unknown; every eligible
customer of the CAR's latest snapshot whatever their outcome, since they are the scoring
population: a label that is not known yet never drops a customer from scoring) and the cell's rows of
`prep.variable_decisions`: the frame is built and cleaned in a staging table, then swapped in with
the decisions in one transaction, so a failure leaves the previous frame and decisions.
The frame keeps every candidate column, also the dropped ones: the decisions select the features,
and a champion trained earlier may still need a column the current decisions drop. Grouped
categorical levels are replaced by 'other' in the frame itself, so training and scoring read the
same levels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from factory_assets.core.clock import utc_now
from factory_assets.core.names import Table, car_table, frame_table
from factory_assets.core.prep.cleaning import (
    SAMPLE_ROWS,
    CleaningResult,
    Decision,
    apply_groups,
    clean_variables,
)
from factory_assets.core.prep.features import FeaturePlan, base_select, plan_features
from factory_assets.core.prep.sql import (
    BUILD_MEMORY_LIMIT,
    CUSTOMER,
    MONTH_INDEX,
    SNAPSHOT,
    TARGET,
    PrepError,
    create_table,
    quote,
    table_columns,
)
from factory_assets.core.prep.targets import TargetPlan, check_target_data, plan_target
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport
from factory_assets.core.warehouse import Warehouse, transaction

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
        }


def frame_sql(car: str, target: TargetPlan, features: FeaturePlan, columns: dict[str, str]) -> str:
    """The SELECT of the training frame (see `targets` and `features` for the semantics)."""
    h = target.horizon
    base = [base_select(c, columns, "t") for c in features.base]
    hist_names = [
        f"{features.outer[c.name]} as {quote(c.name)}" if c.name in features.outer else f"h.{quote(c.name)}"
        for c in features.history
    ]
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
    join = ""
    if features.history:
        inputs = ", ".join(f"cast({quote(c)} as double) as {quote(c)}" for c in features.history_inputs)
        ctes.append(
            f"hist as (select _cid, _mi, {', '.join(features.history_select)} from "
            f"(select _cid, _mi, {inputs} from c0) {features.windows})"
        )
        join = "left join hist h on h._cid = t._cid and h._mi = t._mi"
    select = ", ".join(
        [
            f"t._cid as {CUSTOMER}",
            f"t._sd as {SNAPSHOT}",
            f"cast(t._target as integer) as {TARGET}",
            *base,
            *hist_names,
        ]
    )
    # Kept: rows with a known outcome (training), rows whose outcome snapshot is not in the CAR
    # yet, and the whole latest snapshot (the scoring population, whatever its outcome: a label
    # column is often NULL there). Dropped: earlier rows whose outcome is observable but unknown.
    return (
        f"with {', '.join(ctes)} select {select} from labelled t {join} "
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


def _build(
    con: duckdb.DuckDBPyConnection, market: str, spec: ModelSpec, stage: str, opts: _Options
) -> FrameSummary:
    """Write the frame into `stage`, measure and clean it; the decisions are returned, not written."""
    cell, car, table = f"{market}/{spec.name}", car_table(market), frame_table(market, spec.name)
    columns = table_columns(con, car)
    if not columns:
        raise PrepError(f"{cell}: the CAR table {car} does not exist (car_snapshots has not run)")
    target = plan_target(spec, columns, cell)
    scoring = check_target_data(con, car, target, cell)[-1]
    features = plan_features(spec, columns, opts.label_columns, cell)
    sql = frame_sql(car, target, features, columns)
    create_table(con, stage, sql, opts.run_id, opts.memory_limit)
    rows, labelled, positives, snapshots, labelled_snaps, first, last, scoring_rows = _counts(
        con, stage, scoring
    )
    if labelled == 0:
        raise PrepError(
            f"{cell}: no labelled rows: {rows} eligible rows in {snapshots} snapshots, none with "
            "an observable outcome (check the population filters and 'from' values)"
        )
    result: CleaningResult = clean_variables(
        con,
        stage,
        features.candidates,
        target.own_column,
        spec.cleaning,
        spec.sampling.seed,
        opts.sample_rows,
    )
    apply_groups(con, stage, result.groups)
    typed = [
        Decision(n, "type", None, None, "drop", f"unsupported type {t}")
        for n, t in features.unsupported.items()
    ]
    decisions = typed + result.decisions
    counts = (rows, labelled, int(positives), snapshots, labelled_snaps, first, last, scoring, scoring_rows)
    return FrameSummary(table, *counts, len(features.candidates), decisions)


def _publish(con: duckdb.DuckDBPyConnection, stage: str, summary: FrameSummary, market: str, model: str,
             run_id: str) -> None:  # fmt: skip
    """Swap the staged frame in and replace the cell's decisions, in one transaction."""
    with transaction(con):
        con.execute(f"drop table if exists {summary.table}")
        con.execute(f"alter table {stage} rename to {summary.table.rpartition('.')[2]}")
        _write_decisions(con, market, model, summary.decisions, run_id)


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

    The frame is built in a staging table (a large CREATE runs about twice as fast outside an
    explicit transaction), then swapped in together with the decisions in one transaction: a
    failure at any point leaves the previous frame and decisions. `label_columns` are CAR columns
    that are labels, never features (the contract's role 'label'). `memory_limit` (DuckDB syntax,
    e.g. '2GB', None = DuckDB's default of 80% of RAM) bounds DuckDB's memory; beyond it, DuckDB
    spills to disk.
    """
    stage = f"{frame_table(market, spec.name)}__stage"
    opts = _Options(run_id, label_columns, sample_rows or SAMPLE_ROWS, memory_limit)

    def action(con: duckdb.DuckDBPyConnection) -> FrameSummary:
        try:
            summary = _build(con, market, spec, stage, opts)
            _publish(con, stage, summary, market, spec.name, run_id)
        finally:
            con.execute(f"drop table if exists {stage}")
        return summary

    return warehouse.execute(action)


def training_frame_stage(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """The `training_frame` stage of one cell: build the frame, report what was kept and dropped."""
    return build_training_frame(ctx.warehouse, market, spec, ctx.run_id, ctx.label_columns).metadata()
