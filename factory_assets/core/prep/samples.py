"""The model samples of a cell: the sample plan (`sampling`) applied to the training frame in SQL.

Writes the cell's partition of `prep.samples` (customer_id, snapshot_date, split, weight, target:
keys only, the features are joined when the sample is read, `prepared.load_model_samples`), and its
rows of `prep.sample_rates` and of `prep.sample_summary` (with the kept features). Rows are picked
per (snapshot, target) stratum in the order of a seeded hash of customer and snapshot, so a rerun on
the same frame picks the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb
import pandas as pd

from factory_assets.core.names import Table
from factory_assets.core.prep.cell_data import (
    SAMPLES_COLUMNS,
    frames_label,
    read_frame_columns,
    replace_cell_rows,
    samples_label,
)
from factory_assets.core.prep.sampling import SamplePlan, SnapshotCounts, check_positives, plan_samples
from factory_assets.core.prep.sql import (
    BUILD_MEMORY_LIMIT,
    CUSTOMER,
    SNAPSHOT,
    TARGET,
    PrepError,
    bounded,
    literal,
)
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport
from factory_assets.core.warehouse import Warehouse, transaction


@dataclass(frozen=True)
class SampleSummary:
    """What a cell's sample holds: the numbers the UI shows and the checks read."""

    table: str
    plan: SamplePlan
    features: list[str]
    categorical: list[str]

    def metadata(self) -> dict[str, object]:
        """The stage report: rows and positives per split, beta, snapshots, the rates per snapshot."""
        out: dict[str, object] = {
            "table": self.table,
            "beta": round(self.plan.beta, 6),
            "target_rate": round(self.plan.target_rate, 6),
            "cross_sectional": self.plan.cross_sectional,
        }
        for split in ("train", "validation", "test"):
            out[f"rows_{split}"], out[f"positives_{split}"] = self.plan.totals(split)
        out["test_snapshots"] = ", ".join(str(d) for d in self.plan.test_snapshots)
        out["train_snapshots"] = len(self.plan.train_snapshots)
        out["features"] = len(self.features)
        out["sample_rates"] = pd.DataFrame(self.plan.rates()).round(4)
        return out


def kept_features(warehouse: Warehouse, market: str, model: str) -> tuple[list[str], list[str]]:
    """(features, categorical) the cell's variable decisions keep, in frame column order."""
    cell = f"{market}/{model}"
    columns = warehouse.execute(lambda con: read_frame_columns(con, market, model))
    if not columns:
        table = frames_label(market, model)
        raise PrepError(f"{cell}: the training frame {table} does not exist (training_frame has not run)")
    decided = warehouse.query(
        f"select variable, bool_or(decision = 'drop') as dropped from {Table.VARIABLE_DECISIONS} "
        "where market = ? and model = ? group by variable",
        [market, model],
    )
    dropped = dict(zip(decided["variable"], decided["dropped"], strict=True))
    features = [c for c in columns if c in dropped and not dropped[c]]
    categorical = [c for c in features if columns[c].kind == "string"]
    return features, categorical


def snapshot_counts(warehouse: Warehouse, market: str, model: str) -> list[SnapshotCounts]:
    """Labelled rows and positives per snapshot of the cell's training frame."""
    frame = warehouse.query(
        f"select {SNAPSHOT} as d, count(*) as n, sum({TARGET}) as p from {Table.FRAMES} "
        f"where market = ? and model = ? and {TARGET} is not null group by 1 order by 1",
        [market, model],
    )
    return [SnapshotCounts(pd.Timestamp(r.d).date(), int(r.n), int(r.p)) for r in frame.itertuples()]


def samples_sql(market: str, model: str, plan: SamplePlan, seed: int) -> str:
    """The SELECT that marks the planned rows of each stratum of the cell with their split and weight."""
    values = ", ".join(
        f"(date {literal(str(s.snapshot_date))}, {s.target}, {s.test}, {s.validation}, {s.train}, "
        f"{float(s.weight)!r})"
        for s in plan.strata
    )
    order = f"hash({CUSTOMER}, {SNAPSHOT}, {int(seed)}), {CUSTOMER}"
    cell = f"market = {literal(market)} and model = {literal(model)}"
    return (
        f"with plan as (select * from (values {values}) v(d, t, n_test, n_validation, n_train, weight)), "
        f"ranked as (select {CUSTOMER}, {SNAPSHOT}, {TARGET}, row_number() over (partition by "
        f"{SNAPSHOT}, {TARGET} order by {order}) as _rn from {Table.FRAMES} where {cell} and "
        f"{TARGET} is not null and {SNAPSHOT} in (select d from plan)) "
        f"select r.{CUSTOMER}, r.{SNAPSHOT}, case when _rn <= n_test then 'test' "
        f"when _rn <= n_test + n_validation then 'validation' else 'train' end as split, case when _rn <= "
        f"n_test then 1.0 else weight end as weight, r.{TARGET} from ranked r join plan p "
        f"on p.d = r.{SNAPSHOT} and p.t = r.{TARGET} where _rn <= n_test + n_validation + n_train"
    )


def _summary_row(market: str, spec: ModelSpec, summary: SampleSummary) -> pd.DataFrame:
    plan = summary.plan
    row: dict[str, object] = {
        "market": market,
        "model": spec.name,
        "spec_hash": spec.spec_hash,
        "detrend": spec.sampling.detrend,
        "target_rate": plan.target_rate,
        "beta": plan.beta,
        "cross_sectional": plan.cross_sectional,
    }
    for split in ("train", "validation", "test"):
        row[f"rows_{split}"], row[f"positives_{split}"] = plan.totals(split)
    days = sorted({*plan.train_snapshots, *plan.test_snapshots})
    row.update(
        first_snapshot=days[0],
        last_snapshot=days[-1],
        test_snapshot=plan.test_snapshots[-1],
        test_snapshots=json.dumps([str(d) for d in plan.test_snapshots]),
        features=json.dumps(summary.features),
        categorical=json.dumps(summary.categorical),
    )
    return pd.DataFrame([row])


def build_model_samples(
    warehouse: Warehouse,
    market: str,
    spec: ModelSpec,
    run_id: str,
    memory_limit: str | None = BUILD_MEMORY_LIMIT,
) -> SampleSummary:
    """Plan, check and write the cell's samples, sample rates and summary; raise naming the cell.

    Too few positives in any split (`sampling.min_positives_per_split`) fails the cell before
    anything is written. `memory_limit` bounds DuckDB while the samples are written.
    """
    cell = f"{market}/{spec.name}"
    features, categorical = kept_features(warehouse, market, spec.name)
    plan = plan_samples(snapshot_counts(warehouse, market, spec.name), spec.sampling, cell)
    check_positives(plan, spec.sampling.min_positives_per_split, cell)
    sql = samples_sql(market, spec.name, plan, spec.sampling.seed)

    def write(con: duckdb.DuckDBPyConnection) -> None:
        bounded(con, memory_limit)
        with transaction(con):
            replace_cell_rows(con, Table.SAMPLES, SAMPLES_COLUMNS, market, spec.name, sql, run_id)

    warehouse.execute(write)
    summary = SampleSummary(samples_label(market, spec.name), plan, features, categorical)
    partition = {"market": market, "model": spec.name}
    rates = pd.DataFrame(plan.rates()).assign(market=market, model=spec.name)
    rates = rates.astype({"rate_before": float, "rate_after": float})
    warehouse.replace_partition(Table.SAMPLE_RATES, rates, partition, run_id)
    warehouse.replace_partition(Table.SAMPLE_SUMMARY, _summary_row(market, spec, summary), partition, run_id)
    return summary


def sample_dates(values: list[str]) -> list[dt.date]:
    """ISO dates (as stored in the summary's JSON) as dates."""
    return [dt.date.fromisoformat(v) for v in values]


def model_samples_stage(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """The `model_samples` stage of one cell: plan and write the marked sample, report its splits."""
    return build_model_samples(ctx.warehouse, market, spec, ctx.run_id).metadata()
