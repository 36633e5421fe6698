"""Variable cleaning: measure every candidate feature in SQL, drop or group it by the spec's rules.

Measures come from a deterministic sample of at most `SAMPLE_ROWS` labelled rows (every labelled
row when there are fewer), drawn by a seeded hash of the customer and snapshot. Rules, in order;
a variable's first failing rule drops it and later rules are not evaluated:
1. `target_product`: the target's own column (product or label) and its history features.
2. `missing_share`: share of NULLs above `max_missing_share`.
3. `dominant_share`: share of the most frequent value (NULL counts as a value) above
   `max_dominant_share` (near-constant).
4. `id_like` (string and integer CAR columns; continuous and history features are exempt): mean
   over snapshots of distinct values / rows above `id_like_ratio`.
5. `categories` (strings): levels rarer than `min_category_share` and those beyond the
   `max_categories - 1` most frequent become 'other' (decision `group`).
6. `leakage_auc`: single-variable AUC, max(AUC, 1 - AUC), above `leakage_auc`. Numbers are ranked
   with NULL lowest (missingness can leak too); categories by their (grouped) target rate.
Every evaluated rule is a row of `prep.variable_decisions`; the kept levels of a grouped column are
recorded with the cell's frame columns (`cell_data`) and mapped when the data is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from factory_assets.core.prep.features import Candidate
from factory_assets.core.prep.sql import CUSTOMER, SNAPSHOT, TARGET, literal, quote
from factory_assets.core.specs import CleaningSpec

SAMPLE_ROWS = 200_000
"""Labelled rows measured per cell (seeded hash sample); bounds time and memory at any size."""
OTHER = "other"
SAMPLE_TABLE = "_clean_sample"
"""The temporary table `clean_variables` measures (the caller fills it; see `sample_keys_sql`)."""


@dataclass(frozen=True)
class Decision:
    """One rule evaluated on one variable."""

    variable: str
    rule: str
    measured: float | None
    threshold: float | None
    decision: Literal["keep", "drop", "group"]
    reason: str


@dataclass(frozen=True)
class CleaningResult:
    """Every decision, and the kept levels of each grouped categorical column."""

    decisions: list[Decision]
    groups: dict[str, list[str]]

    @property
    def dropped(self) -> dict[str, str]:
        """Dropped variable -> reason."""
        return {d.variable: d.reason for d in self.decisions if d.decision == "drop"}


def auc_from_ranks(rank_sum: float, positives: float, rows: float) -> float | None:
    """Symmetric AUC, max(AUC, 1 - AUC), from the rank sum of the positives (Mann-Whitney)."""
    negatives = rows - positives
    if positives <= 0 or negatives <= 0:
        return None
    auc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return float(max(auc, 1 - auc))


def auc_by_group(n: np.ndarray, p: np.ndarray) -> float | None:
    """AUC of a score that is each group's own target rate (ties share half credit)."""
    positives, rows = float(p.sum()), float(n.sum())
    if positives <= 0 or positives >= rows:
        return None
    frame = pd.DataFrame({"rate": p / n, "n": n, "p": p}).groupby("rate").sum().sort_index()
    negatives = (frame["n"] - frame["p"]).to_numpy(float)
    below = np.concatenate([[0.0], np.cumsum(negatives)[:-1]])
    wins = float((frame["p"].to_numpy(float) * (below + negatives / 2)).sum())
    auc = wins / (positives * (rows - positives))
    return float(max(auc, 1 - auc))


def sample_keys_sql(table: str, seed: int, rows: int) -> str:
    """The keys and target of the measured sample: at most `rows` labelled rows of `table`.

    Drawn in the order of a seeded hash of customer and snapshot, so a rerun measures the same rows.
    """
    return (
        f"select {CUSTOMER}, {SNAPSHOT}, {TARGET} from {table} where {TARGET} is not null "
        f"order by hash({CUSTOMER}, {SNAPSHOT}, {int(seed)}), {CUSTOMER}, {SNAPSHOT} limit {int(rows)}"
    )


def _numeric_stats(con: duckdb.DuckDBPyConnection, names: list[str]) -> pd.DataFrame:
    parts = [
        f"select {literal(name)} as variable, sum(n) as rows, coalesce(sum(n) filter (where v is null), 0) "
        f"as missing, max(n) as dominant, sum(p * (coalesce(before, 0) + (n + 1) / 2.0)) as rank_sum, "
        f"sum(p) as positives from (select v, n, p, sum(n) over (order by v asc nulls first rows between "
        f"unbounded preceding and 1 preceding) as before from (select {quote(name)} as v, count(*) as n, "
        f"sum({TARGET}) as p from {SAMPLE_TABLE} group by 1))"
        for name in names
    ]
    return con.execute(" union all ".join(parts)).df().set_index("variable") if parts else pd.DataFrame()


def _union(
    con: duckdb.DuckDBPyConnection, names: list[str], part: Callable[[str], str]
) -> pd.DataFrame | None:
    """One query over every variable: `part(name)` per variable, unioned; None when there are none."""
    if not names:
        return None
    return con.execute(" union all ".join(part(name) for name in names)).df()


def _levels(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, pd.DataFrame]:
    frame = _union(
        con,
        names,
        lambda name: (
            f"select {literal(name)} as variable, cast({quote(name)} as varchar) as level, "
            f"count(*) as n, sum({TARGET}) as p from {SAMPLE_TABLE} group by 2"
        ),
    )
    if frame is None:
        return {}
    return {name: group.drop(columns="variable") for name, group in frame.groupby("variable", sort=False)}


def _id_ratios(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, float]:
    frame = _union(
        con,
        names,
        lambda name: (
            f"select {literal(name)} as variable, avg(d / n) as ratio from (select {SNAPSHOT}, "
            f"count(distinct {quote(name)}) as d, count(*) as n from {SAMPLE_TABLE} group by 1)"
        ),
    )
    return {} if frame is None else {row.variable: float(row.ratio) for row in frame.itertuples()}


def _rule(name: str, rule: str, measured: float | None, threshold: float, what: str) -> Decision:
    value = None if measured is None else round(float(measured), 4)
    if value is not None and value > threshold:
        return Decision(name, rule, value, threshold, "drop", f"{what} {value} > {threshold}")
    return Decision(name, rule, value, threshold, "keep", f"{what} {value} <= {threshold}")


def _leakage(name: str, auc: float | None, spec: CleaningSpec) -> Decision:
    if auc is None:
        return Decision(name, "leakage_auc", None, spec.leakage_auc, "keep", "AUC undefined: one class")
    return _rule(name, "leakage_auc", auc, spec.leakage_auc, "single-variable AUC")


def _screen(name: str, rows: float, missing: float, dominant: float, spec: CleaningSpec) -> list[Decision]:
    """The missing and near-constant rules (shared by numbers and categories)."""
    out = [_rule(name, "missing_share", missing / rows, spec.max_missing_share, "missing share")]
    if out[-1].decision == "keep":
        out.append(_rule(name, "dominant_share", dominant / rows, spec.max_dominant_share, "dominant share"))
    return out


def _numeric(
    candidate: Candidate, stats: pd.Series, id_ratio: float | None, spec: CleaningSpec
) -> list[Decision]:
    name = candidate.name
    out = _screen(name, stats["rows"], stats["missing"], stats["dominant"], spec)
    if out[-1].decision == "keep" and id_ratio is not None:
        out.append(_rule(name, "id_like", id_ratio, spec.id_like_ratio, "distinct / rows"))
    if out[-1].decision == "keep":
        auc = auc_from_ranks(float(stats["rank_sum"]), float(stats["positives"]), float(stats["rows"]))
        out.append(_leakage(name, auc, spec))
    return out


def kept_levels(levels: pd.DataFrame, rows: float, spec: CleaningSpec) -> list[str]:
    """Levels kept as themselves: not rare, and at most `max_categories - 1` when some are grouped."""
    present = levels.dropna(subset=["level"]).sort_values(["n", "level"], ascending=[False, True])
    common = present[present["n"] / rows >= spec.min_category_share]["level"].tolist()
    if len(common) > spec.max_categories:
        common = common[: spec.max_categories - 1]
    return common


def _categorical(
    name: str, levels: pd.DataFrame, id_ratio: float, spec: CleaningSpec
) -> tuple[list[Decision], list[str] | None]:
    rows = float(levels["n"].sum())
    out = _screen(name, rows, float(levels.loc[levels["level"].isna(), "n"].sum()), levels["n"].max(), spec)
    if out[-1].decision == "keep":
        out.append(_rule(name, "id_like", id_ratio, spec.id_like_ratio, "distinct / rows"))
    if out[-1].decision == "drop":
        return out, None
    keep = kept_levels(levels, rows, spec)
    count = int(levels["level"].notna().sum())
    grouped = count - len(keep)
    verdict = "group" if grouped else "keep"
    reason = (
        f"{grouped} of {count} levels grouped into '{OTHER}'; kept: {', '.join(keep)}"
        if grouped
        else f"{count} levels, none rare"
    )
    out.append(Decision(name, "categories", float(count), float(spec.max_categories), verdict, reason))
    mapped = levels["level"].where(levels["level"].isin(keep) | levels["level"].isna(), OTHER).fillna("\0")
    totals = levels.groupby(mapped)[["n", "p"]].sum()
    out.append(_leakage(name, auc_by_group(totals["n"].to_numpy(float), totals["p"].to_numpy(float)), spec))
    return out, keep if grouped else None


def clean_variables(
    con: duckdb.DuckDBPyConnection, candidates: list[Candidate], own_column: str, spec: CleaningSpec
) -> CleaningResult:
    """Measure and decide every candidate on the labelled rows of `SAMPLE_TABLE`, then drop it.

    The caller fills `SAMPLE_TABLE` with the rows of `sample_keys_sql` (snapshot_date, target) and
    every candidate column, grouped levels not applied yet.
    """
    own = [c for c in candidates if c.source == own_column]
    decisions = [
        Decision(
            c.name,
            "target_product",
            None,
            None,
            "drop",
            f"derived from the target's own column '{own_column}'",
        )
        for c in own
    ]
    rest = [c for c in candidates if c.source != own_column]
    numbers = [c for c in rest if c.kind != "string"]
    strings = [c for c in rest if c.kind == "string"]
    stats = _numeric_stats(con, [c.name for c in numbers])
    ratios = _id_ratios(con, [c.name for c in rest if not c.derived and c.kind in ("integer", "string")])
    levels = _levels(con, [c.name for c in strings])
    groups: dict[str, list[str]] = {}
    for candidate in rest:
        if candidate.kind == "string":
            found, keep = _categorical(candidate.name, levels[candidate.name], ratios[candidate.name], spec)
            if keep is not None:
                groups[candidate.name] = keep
        else:
            found = _numeric(candidate, stats.loc[candidate.name], ratios.get(candidate.name), spec)
        decisions.extend(found)
    con.execute(f"drop table if exists {SAMPLE_TABLE}")
    return CleaningResult(decisions, groups)
