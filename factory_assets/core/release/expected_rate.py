"""The positive rate a cell's scores are expected to average: what was observed where labels arrived.

Labels arrive `horizon` months after a snapshot, so the latest observed rate belongs to an older
population than the scored one. To compare like with like, the expected rate comes with the
champion's own mean probability on that same labelled population; Data Checker 2's
`mean_near_expected` then carries the rate forward by how the champion's mean moved from there to
the reference scores (`score_checks.carried_rate`). Two observations qualify:
- the realised rate of the latest scored snapshot whose labels arrived
  (`registry.realised_performance`: the population's, whichever model scored it), with the
  champion's mean there from its own scores (`scores.score_history`) or its score reference
  (`registry.score_references`);
- the champion's out-of-time test (`registry.models`: metrics `test_base_rate` or `base_rate`, and
  `mean_predicted`, on `test_snapshots`).
The most recent one with the champion's mean wins (the realised one on a tie); when neither has it,
the most recent rate alone (not carried forward), as before the champion's mean was kept.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace

import duckdb
import pandas as pd

from factory_assets.core.names import Table
from factory_assets.core.warehouse import column_types

RATE_KEYS = ("test_base_rate", "base_rate")
"""Keys of the champion's test metrics that hold the natural positive rate (the metrics are on the test)."""
MEAN_KEYS = ("test_mean_predicted", "mean_predicted")
"""Keys of the champion's test metrics that hold its mean calibrated probability on the test."""


@dataclass(frozen=True)
class ExpectedRate:
    """A positive rate observed on a labelled population, and the champion's mean probability on it.

    `rate` is None when nothing was observed; `source` then says why. `champion_mean` is None when
    the champion's mean on that population is unknown (the rate cannot be carried forward).
    """

    rate: float | None
    source: str
    snapshot: dt.date | None = None
    champion_mean: float | None = None


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> pd.DataFrame:
    return con.execute(sql, params).df()


def _date(value: object) -> dt.date:
    return pd.Timestamp(value).date()


def realised_rate(con: duckdb.DuckDBPyConnection, market: str, model: str) -> ExpectedRate:
    """The positive rate of the latest scored snapshot whose labels arrived (rate None if none did).

    The rate belongs to the population, whichever model scored it: of several versions measured on
    the same snapshot, the one that covered the most customers counts.
    """
    if not column_types(con, Table.REALISED_PERFORMANCE):
        return ExpectedRate(None, f"{Table.REALISED_PERFORMANCE} does not exist")
    rows = _rows(
        con,
        f"select snapshot_date, n, positives from {Table.REALISED_PERFORMANCE} "
        "where market = ? and model = ? and n > 0 order by snapshot_date desc, n desc limit 1",
        [market, model],
    )
    if rows.empty:
        return ExpectedRate(None, "none recorded for the cell")
    row = rows.iloc[0]
    snapshot = _date(row["snapshot_date"])
    rate = int(row["positives"]) / int(row["n"])
    source = f"realised rate at {snapshot}, {int(row['n'])} customers with known outcome"
    return ExpectedRate(rate, source, snapshot)


def champion_mean_at(
    con: duckdb.DuckDBPyConnection, market: str, model: str, version: str, snapshot: dt.date
) -> tuple[float | None, str]:
    """The champion's mean probability on `snapshot`: from its scores there, else its score reference."""
    cell = [market, model, version, snapshot]
    where = "market = ? and model = ? and model_version = ? and snapshot_date = ?"
    if column_types(con, Table.SCORE_HISTORY):
        sql = f"select avg(probability) as m from {Table.SCORE_HISTORY} where {where}"
        mean = _rows(con, sql, cell).iloc[0]["m"]
        if pd.notna(mean):
            return float(mean), "its scores there"
    if column_types(con, Table.SCORE_REFERENCES):
        sql = f"select mean_probability as m from {Table.SCORE_REFERENCES} where {where}"
        rows = _rows(con, sql, cell)
        if not rows.empty and pd.notna(rows.iloc[0]["m"]):
            return float(rows.iloc[0]["m"]), "its score reference there"
    return None, "unknown"


def _metrics(value: object) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(str(value)) if value is not None and not pd.isna(value) else {}


def _first(metrics: dict, keys: tuple[str, ...]) -> tuple[str, float] | None:
    key = next((k for k in keys if metrics.get(k) is not None), None)
    return (key, float(metrics[key])) if key else None


def _test_days(value: object) -> list[str]:
    """The test snapshots of a registry row (a JSON list; none for a row written before they were kept)."""
    if not isinstance(value, str) or not value:
        return []
    return sorted(str(day) for day in json.loads(value))


def test_rate_of(con: duckdb.DuckDBPyConnection, version: str | None) -> ExpectedRate:
    """The natural positive rate on the champion's out-of-time test, with its mean prediction there."""
    if version is None:
        return ExpectedRate(None, "no model version on the scores")
    columns = column_types(con, Table.MODELS)
    if not columns:
        return ExpectedRate(None, f"{Table.MODELS} does not exist")
    wanted = "metrics, test_snapshots" if "test_snapshots" in columns else "metrics"
    rows = _rows(con, f"select {wanted} from {Table.MODELS} where model_version = ?", [version])
    if rows.empty:
        return ExpectedRate(None, f"{Table.MODELS} has no row for model version {version}")
    metrics = _metrics(rows.iloc[0]["metrics"])
    rate = _first(metrics, RATE_KEYS)
    if rate is None:
        return ExpectedRate(None, f"metrics of {version[:12]} hold none of {RATE_KEYS}")
    days = _test_days(rows.iloc[0].get("test_snapshots"))
    where = f" on its out-of-time test {', '.join(days)}" if days else ""
    mean = _first(metrics, MEAN_KEYS)
    source = f"{rate[0]} of {version[:12]}{where}"
    if mean is not None:
        source += f", its mean probability there {mean[1]:.4f}"
    last = dt.date.fromisoformat(days[-1]) if days else None
    return ExpectedRate(rate[1], source, last, mean[1] if mean else None)


def _with_champion_mean(
    con: duckdb.DuckDBPyConnection, market: str, model: str, version: str | None, seen: ExpectedRate
) -> ExpectedRate:
    if version is None or seen.rate is None or seen.snapshot is None:
        return seen
    mean, where = champion_mean_at(con, market, model, version, seen.snapshot)
    if mean is None:
        return seen
    source = f"{seen.source}; {version[:12]}'s mean probability there {mean:.4f} ({where})"
    return replace(seen, source=source, champion_mean=mean)


def _recency(seen: ExpectedRate) -> dt.date:
    return seen.snapshot or dt.date.min


def choose(realised: ExpectedRate, test: ExpectedRate) -> ExpectedRate:
    """The most recent observation with the champion's mean (realised on a tie), else the most recent rate."""
    observed = [r for r in (realised, test) if r.rate is not None]
    if not observed:
        return ExpectedRate(None, f"{test.source} (no realised rate yet: {realised.source})")
    with_mean = [r for r in observed if r.champion_mean is not None]
    best = max(with_mean or observed, key=_recency)  # max keeps the first of equals: the realised rate
    if best is realised:
        return best
    if realised.rate is None:
        return replace(best, source=f"{best.source} (no realised rate yet: {realised.source})")
    unknown = with_mean and realised.champion_mean is None
    why = "the champion's mean on that population is unknown" if unknown else "it is older"
    return replace(best, source=f"{best.source} (not the {realised.source}: {why})")


def expected_rate(
    con: duckdb.DuckDBPyConnection, market: str, model: str, model_version: str | None
) -> ExpectedRate:
    """The rate the cell's scores are expected to average, with the champion's mean where it was seen."""
    realised = _with_champion_mean(con, market, model, model_version, realised_rate(con, market, model))
    return choose(realised, test_rate_of(con, model_version))
