"""Daily scoring with the champion, and the realised performance of earlier scores once labels arrive.

Every score row carries its lineage: the model version, the decision that made it champion, the
snapshot, the run and the time. Percentile ranks come from the raw (sample-scale) score, ties broken
by customer_id, so that they are deterministic; decile 1 is the top 10% of scores. When the spec opts
in (`output.reason_codes`), each row also carries its top contributing features
(`core.model.reasons`); the columns are added to `scores.scores` the first time a cell writes them.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd

from factory_assets.core.model import metrics, registry
from factory_assets.core.model.reason_columns import reason_column_types
from factory_assets.core.model.reasons import reason_codes
from factory_assets.core.model.registry import ChampionPointer, ModelRecord
from factory_assets.core.model.store import ModelStore
from factory_assets.core.model.training import predict_sample_scale
from factory_assets.core.names import Table
from factory_assets.core.prep import prepared
from factory_assets.core.release.snapshot_record import verdict_report
from factory_assets.core.release.tables import add_missing_columns
from factory_assets.core.specs import ModelSpec, ReasonCodesSpec
from factory_assets.core.stage import StageContext, StageReport
from factory_assets.core.warehouse import PartitionCopy

HISTORY_COLUMNS = ["customer_id", "snapshot_date", "raw_score", "probability", "model_version", "decision_id"]
"""What the history keeps of each score row (with market and model)."""


def percentile_ranks(raw_score: np.ndarray, customer_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(percentile in (0, 100], decile 1..10) by raw score; equal scores are ordered by customer_id.

    The lowest score gets 100/n, the highest 100; decile 1 holds the highest tenth of scores.
    """
    raw = np.asarray(raw_score, dtype=float)
    n = len(raw)
    order = np.lexsort((np.asarray(customer_id, dtype=str), raw))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    percentile = 100.0 * rank / n
    decile = 11 - (10 * rank + n - 1) // n  # 11 - ceil(percentile / 10): percentile (90, 100] is decile 1
    return percentile, decile.astype(np.int64)


def score_population(
    model: object,
    population: pd.DataFrame,
    record: ModelRecord,
    champion: ChampionPointer,
    run_id: str,
    scored_at: dt.datetime,
) -> pd.DataFrame:
    """Score rows with lineage for one snapshot's eligible population."""
    if population["customer_id"].duplicated().any():
        raise ValueError(f"{record.market}/{record.model}: the population holds duplicate customer_ids")
    raw = predict_sample_scale(model, population, record.features, record.categorical)
    percentile, decile = percentile_ranks(raw, population["customer_id"].to_numpy())
    return pd.DataFrame(
        {
            "customer_id": population["customer_id"].to_numpy(),
            "snapshot_date": population["snapshot_date"].to_numpy(),
            "raw_score": raw,
            "probability": record.natural_probability(raw),
            "percentile": percentile,
            "decile": decile,
            "model_version": record.version,
            "decision_id": champion.decision_id,
            "eligible_rows": len(population),
            "run_id": run_id,
            "scored_at": scored_at,
        }
    )


def with_reason_codes(
    scores: pd.DataFrame, model: object, population: pd.DataFrame, record: ModelRecord, top_n: int
) -> pd.DataFrame:
    """`scores` (rows in `population`'s order) with the reason columns of `top_n` slots appended."""
    found = reason_codes(model, population, record.features, record.categorical, top_n)
    return pd.concat([scores, found.set_axis(scores.index)], axis=1)


def _predict(
    model: object,
    population: pd.DataFrame,
    record: ModelRecord,
    champion: ChampionPointer,
    ctx: StageContext,
    reasons: ReasonCodesSpec,
) -> tuple[pd.DataFrame, float | None]:
    """The score rows, with reason codes when the spec opts in; (rows, seconds spent on the reasons)."""
    scores = score_population(model, population, record, champion, ctx.run_id, ctx.now)
    if not reasons.enabled:
        return scores, None
    started = time.perf_counter()
    scores = with_reason_codes(scores, model, population, record, reasons.top_n)
    return scores, time.perf_counter() - started


def realised(target: np.ndarray, raw_score: np.ndarray) -> dict[str, float] | None:
    """AUC and top-decile lift of scores against the labels that arrived; None with a single class."""
    y = np.asarray(target, dtype=int)
    if len(np.unique(y)) < 2:
        return None
    lift, _ = metrics.lift_and_capture(y, raw_score)
    return {"n": len(y), "positives": int(y.sum()), "auc": metrics.auc(y, raw_score), "lift_top_decile": lift}


def _as_date(value: object) -> dt.date:
    return pd.Timestamp(value).date()


def _measure(ctx: StageContext, market: str, model: str, version: str, snapshot: dt.date) -> dict | None:
    """Realised performance of the scores `version` gave on `snapshot`, against the labels now known."""
    scored = ctx.warehouse.query(
        f"select customer_id, raw_score from {Table.SCORE_HISTORY} "
        "where market = ? and model = ? and snapshot_date = ? and model_version = ?",
        [market, model, snapshot, version],
    )
    truth = prepared.load_population(ctx.warehouse, market, model, [], snapshot)
    joined = scored.merge(truth[["customer_id", "target"]].dropna(subset=["target"]), on="customer_id")
    result = realised(joined["target"].to_numpy(), joined["raw_score"].to_numpy())
    if result is None:
        return None
    row = {"market": market, "model": model, "model_version": version, "snapshot_date": snapshot}
    return {**row, **result, "computed_at": ctx.now}


def update_realised_performance(ctx: StageContext, market: str, model: str) -> list[dict[str, object]]:
    """Measure every scored snapshot whose labels have arrived and that is not measured yet.

    A snapshot whose labels hold a single class cannot give an AUC and is left unmeasured.
    """
    history = ctx.warehouse.query(
        f"select distinct snapshot_date, model_version from {Table.SCORE_HISTORY} "
        "where market = ? and model = ?",
        [market, model],
    )
    done = registry.read(
        ctx.warehouse, Table.REALISED_PERFORMANCE, "market = ? and model = ?", [market, model]
    )
    measured = {(r.model_version, _as_date(r.snapshot_date)) for r in done.itertuples()}
    labelled = set(prepared.labelled_snapshots(ctx.warehouse, market, model))
    rows = []
    for item in history.itertuples():
        snapshot = _as_date(item.snapshot_date)
        if snapshot not in labelled or (item.model_version, snapshot) in measured:
            continue
        row = _measure(ctx, market, model, item.model_version, snapshot)
        if row is not None:
            registry.write(ctx.warehouse, Table.REALISED_PERFORMANCE, row, ctx.run_id)
            rows.append(row)
    return rows


def score_cell(ctx: StageContext, spec: ModelSpec, market: str) -> StageReport:
    """Score the latest snapshot with the champion, replace the cell's scores, update realised performance.

    The report names the scored snapshot and its Data Checker 1 verdict, with the reasons of a warning.
    """
    model, reasons = spec.name, spec.output.reason_codes
    with ctx.warehouse.session():
        champion = registry.current_champion(ctx.warehouse, market, model)
        if champion is None:
            raise LookupError(
                f"{market}/{model}: no champion has been promoted, so there is nothing to score with"
            )
        record = registry.model_record(ctx.warehouse, market, model, champion.version)
        snapshot = prepared.latest_snapshot(ctx.warehouse, market, model)
        population = prepared.load_population(ctx.warehouse, market, model, record.features, snapshot)
    if population.empty:
        raise ValueError(f"{market}/{model}: the population of {snapshot} is empty; nothing to score")
    with ctx.warehouse.released():  # a full population's prediction: hold no connection
        model_object = ModelStore(ctx.models_dir).load(record.version)
        scores, reason_seconds = _predict(model_object, population, record, champion, ctx, reasons)
    cell = {"market": market, "model": model}
    history = PartitionCopy(
        Table.SCORE_HISTORY, [*HISTORY_COLUMNS, *cell], {**cell, "snapshot_date": snapshot}
    )
    with ctx.warehouse.session():
        if reason_seconds is not None:
            add_missing_columns(ctx.warehouse, Table.SCORES, reason_column_types(reasons.top_n))
        ctx.warehouse.replace_partition(Table.SCORES, scores, cell, ctx.run_id, copies=[history])
        measured = update_realised_performance(ctx, market, model)
        verdict = verdict_report(ctx.warehouse, market, snapshot)
    report: dict[str, object] = {
        "rows": len(scores),
        "snapshot_date": str(snapshot),
        **verdict,
        "model_version": record.version,
        "decision_id": champion.decision_id,
        "mean_probability": round(float(scores["probability"].mean()), 6),
        "realised_snapshots_measured": len(measured),
    }
    if reason_seconds is not None:
        report["reason_codes_top_n"] = reasons.top_n
        report["reason_codes_seconds"] = round(reason_seconds, 2)
    if measured:
        report["realised_performance"] = pd.DataFrame(measured).drop(
            columns=["market", "model", "computed_at"]
        )
    return report
