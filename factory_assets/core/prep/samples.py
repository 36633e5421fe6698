"""The model samples of a cell: the sample plan (`sampling`) applied to the training frame in SQL.

Writes `prep.samples__<market>__<model>` (customer_id, snapshot_date, split, weight, target and the
kept features, grouped levels as in the frame), the cell's rows of `prep.sample_rates` and of
`prep.sample_summary`. Rows are picked per (snapshot, target) stratum in the order of a seeded hash
of customer and snapshot, so a rerun on the same frame picks the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd

from factory_assets.core.names import Table, frame_table, samples_table
from factory_assets.core.prep.sampling import SamplePlan, SnapshotCounts, check_positives, plan_samples
from factory_assets.core.prep.sql import (
    BUILD_MEMORY_LIMIT,
    CUSTOMER,
    NON_FEATURES,
    SNAPSHOT,
    TARGET,
    PrepError,
    create_table,
    kind_of,
    literal,
    quote,
    table_columns,
)
from factory_assets.core.specs import ModelSpec
from factory_assets.core.stage import StageContext, StageReport
from factory_assets.core.warehouse import Warehouse


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
    table, cell = frame_table(market, model), f"{market}/{model}"
    columns = warehouse.execute(lambda con: table_columns(con, table))
    if not columns:
        raise PrepError(f"{cell}: the training frame {table} does not exist (training_frame has not run)")
    decided = warehouse.query(
        f"select variable, bool_or(decision = 'drop') as dropped from {Table.VARIABLE_DECISIONS} "
        "where market = ? and model = ? group by variable",
        [market, model],
    )
    dropped = dict(zip(decided["variable"], decided["dropped"], strict=True))
    features = [c for c in columns if c not in NON_FEATURES and c in dropped and not dropped[c]]
    categorical = [c for c in features if kind_of(columns[c]) == "string"]
    return features, categorical


def snapshot_counts(warehouse: Warehouse, table: str) -> list[SnapshotCounts]:
    """Labelled rows and positives per snapshot of a training frame."""
    frame = warehouse.query(
        f"select cast({SNAPSHOT} as date) as d, count(*) as n, sum({TARGET}) as p from {table} "
        f"where {TARGET} is not null group by 1 order by 1"
    )
    return [SnapshotCounts(pd.Timestamp(r.d).date(), int(r.n), int(r.p)) for r in frame.itertuples()]


def samples_sql(table: str, plan: SamplePlan, features: list[str], seed: int) -> str:
    """The SELECT that marks the planned rows of each stratum with their split and weight."""
    values = ", ".join(
        f"(date {literal(str(s.snapshot_date))}, {s.target}, {s.test}, {s.validation}, {s.train}, "
        f"{float(s.weight)!r})"
        for s in plan.strata
    )
    cols = "".join(f", f.{quote(f)}" for f in features)
    order = f"hash({CUSTOMER}, {SNAPSHOT}, {int(seed)}), {CUSTOMER}"
    # Rank and pick on the keys only, then fetch the features of the picked rows: the sort stays
    # narrow however wide the frame is. `picked` is materialised because DuckDB 2.0.0 otherwise fails
    # the join at scale under a memory limit ("INTERNAL Error: dict-surviving join", seen at 1M x 24).
    return (
        f"with plan as (select * from (values {values}) v(d, t, n_test, n_validation, n_train, weight)), "
        f"ranked as (select {CUSTOMER}, {SNAPSHOT}, {TARGET}, row_number() over (partition by "
        f"{SNAPSHOT}, {TARGET} order by {order}) as _rn from {table} where {TARGET} is not null and "
        f"{SNAPSHOT} in (select d from plan)), "
        f"picked as materialized (select r.{CUSTOMER}, r.{SNAPSHOT}, case when _rn <= n_test then 'test' "
        f"when _rn <= n_test + n_validation then 'validation' else 'train' end as split, case when _rn <= "
        f"n_test then 1.0 else weight end as weight, r.{TARGET} from ranked r join plan p "
        f"on p.d = r.{SNAPSHOT} and p.t = r.{TARGET} where _rn <= n_test + n_validation + n_train) "
        f"select k.{CUSTOMER}, k.{SNAPSHOT}, k.split, k.weight, k.{TARGET}{cols} from picked k "
        f"join {table} f on f.{CUSTOMER} = k.{CUSTOMER} and f.{SNAPSHOT} = k.{SNAPSHOT}"
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
    anything is written. `memory_limit` bounds DuckDB while the samples table is written.
    """
    cell, frame = f"{market}/{spec.name}", frame_table(market, spec.name)
    features, categorical = kept_features(warehouse, market, spec.name)
    plan = plan_samples(snapshot_counts(warehouse, frame), spec.sampling, cell)
    check_positives(plan, spec.sampling.min_positives_per_split, cell)
    table = samples_table(market, spec.name)
    sql = samples_sql(frame, plan, features, spec.sampling.seed)
    warehouse.execute(lambda con: create_table(con, table, sql, run_id, memory_limit))
    summary = SampleSummary(table, plan, features, categorical)
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
