"""Data Checker 1, column-level checks: null-rate jumps, category changes and explosions, PSI, labels.

Label columns (the contract's role 'label') are not features: they are known only up to a date, so
their recent values are missing by nature. They get the `labels` check (0/1 where known) and are
left out of the null-rate, category and PSI checks, which `MarketData.columns` already excludes
them from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from factory_assets.core.car import profile as prof
from factory_assets.core.car.check_types import CarCheckThresholds, CheckResult, MarketData

Levels = dict[str, dict[dt.date, dict[str, int]]]
"""Rows per level, by categorical column and snapshot (`car_profile.level_counts`)."""


def check_null_rate(data: MarketData, t: CarCheckThresholds) -> CheckResult:
    """Warning: no feature column's null share jumped vs the previous snapshot (labels are exempt)."""
    if not data.pair:
        return CheckResult("null_rate", True, "fewer than two snapshots", None, t.max_null_rate_increase)
    previous, latest = data.pair
    counts = data.pair_counts
    rates = {}
    for column in data.columns.all:
        before = 1 - counts.loc[f"n:{column}", previous] / data.counts[previous]
        after = 1 - counts.loc[f"n:{column}", latest] / data.counts[latest]
        rates[column] = {"previous": round(float(before), 4), "latest": round(float(after), 4)}
    jumps = {c: round(r["latest"] - r["previous"], 4) for c, r in rates.items()}
    jumped = {c: j for c, j in jumps.items() if j > t.max_null_rate_increase}
    worst = max(jumps.values(), default=0.0)
    summary = (
        f"null share jumped in {', '.join(f'{c} (+{j:.1%})' for c, j in jumped.items())}"
        if jumped
        else f"no column's null share rose by more than {t.max_null_rate_increase:.0%}"
    )
    detail = {"jumped": jumped, "null_rates": rates, "labels_not_checked": list(data.labels)}
    return CheckResult("null_rate", not jumped, summary, worst, t.max_null_rate_increase, detail)


@dataclass(frozen=True)
class LevelChanges:
    """New and vanished levels per categorical column between the previous and latest snapshot."""

    new: dict[str, list[str]]
    vanished: dict[str, list[str]]
    previous_levels: dict[str, int]
    skipped: dict[str, str]


def category_columns(data: MarketData, t: CarCheckThresholds) -> tuple[str, ...]:
    """Text columns with at most `max_levels` values in the previous snapshot: true categories."""
    counts = data.pair_counts
    return tuple(c for c in data.columns.categorical if counts.loc[f"d:{c}", data.pair[0]] <= t.max_levels)


def level_changes(levels: Levels, data: MarketData, t: CarCheckThresholds) -> LevelChanges:
    """Compare the level sets; free-text columns and columns new in the latest snapshot are skipped."""
    previous, latest = data.pair
    counts = data.pair_counts
    skipped = {
        c: f"about {counts.loc[f'd:{c}', previous]} distinct values: free text, not a category"
        for c in data.columns.categorical
        if c not in levels
    }
    new, vanished, before_n = {}, {}, {}
    for column, by_day in levels.items():
        if counts.loc[f"n:{column}", previous] == 0:
            skipped[column] = "null throughout the previous snapshot (a new column)"
            continue
        before, after = set(by_day[previous]), set(by_day[latest])
        before_n[column] = len(before)
        if after - before:
            new[column] = sorted(after - before)
        if before - after:
            vanished[column] = sorted(before - after)
    return LevelChanges(new, vanished, before_n, skipped)


def check_category_changes(changes: LevelChanges | None) -> CheckResult:
    """Warning: no category level appeared or vanished."""
    if changes is None:
        return CheckResult("category_changes", True, "fewer than two snapshots", 0.0, 0.0)
    parts = [f"{c}: new {v[:5]}" for c, v in changes.new.items()]
    parts += [f"{c}: vanished {v[:5]}" for c, v in changes.vanished.items()]
    value = float(sum(map(len, changes.new.values())) + sum(map(len, changes.vanished.values())))
    summary = "; ".join(parts) or "the same category levels as the previous snapshot"
    detail = {"new": changes.new, "vanished": changes.vanished, "skipped": changes.skipped}
    return CheckResult("category_changes", not parts, summary, value, 0.0, detail)


def check_category_explosion(changes: LevelChanges | None, t: CarCheckThresholds) -> CheckResult:
    """Blocking: no categorical column gained an explosion of new levels (a broken code list)."""
    if changes is None:
        summary = "fewer than two snapshots"
        return CheckResult("category_explosion", True, summary, 0.0, t.explosion_new_level_ratio)
    exploded, worst = {}, 0.0
    for column, levels in changes.new.items():
        ratio = len(levels) / max(changes.previous_levels[column], 1)
        worst = max(worst, ratio)
        if len(levels) >= t.explosion_min_new_levels and ratio > t.explosion_new_level_ratio:
            exploded[column] = {"new_levels": len(levels), "previous_levels": changes.previous_levels[column]}
    summary = (
        "; ".join(f"{c}: {v['new_levels']} new levels on {v['previous_levels']}" for c, v in exploded.items())
        or "no explosion of new category levels"
    )
    threshold, detail = t.explosion_new_level_ratio, {"exploded": exploded}
    return CheckResult("category_explosion", not exploded, summary, worst, threshold, detail)


def _no_reference(data: MarketData) -> dict[str, str]:
    """Columns null throughout the previous snapshot, with the reason the PSI skips them."""
    previous, latest = data.pair
    counts, skipped = data.pair_counts, {}
    for column in data.columns.numeric + data.columns.categorical:
        if counts.loc[f"n:{column}", previous] == 0:
            both = counts.loc[f"n:{column}", latest] == 0
            skipped[column] = (
                "null throughout both snapshots"
                if both
                else "null throughout the previous snapshot: no reference distribution (a new column)"
            )
    return skipped


def check_psi(db: prof.Reader, data: MarketData, t: CarCheckThresholds, levels: Levels) -> CheckResult:
    """Warning: no feature column's distribution shifted (PSI vs the previous snapshot, nulls as a bin).

    A column null throughout the previous snapshot has no reference and is skipped with its reason;
    one null throughout the latest lands whole in the null bin, a shift that is reported. Label
    columns are exempt.
    """
    if not data.pair:
        return CheckResult("psi", True, "fewer than two snapshots", None, t.max_psi)
    previous, latest = data.pair
    skipped = _no_reference(data)
    numeric = tuple(c for c in data.columns.numeric if c not in skipped)
    edges = prof.quantile_edges(db, data.table, numeric, previous, t.psi_bins)
    bins = prof.bin_counts(db, data.table, edges, data.pair)
    counts = data.pair_counts
    for column, by_day in levels.items():
        if column in skipped:
            continue
        bins[column] = {
            day: {**by_day[day], prof.NULL_BIN: data.counts[day] - int(counts.loc[f"n:{column}", day])}
            for day in data.pair
        }
    values = {c: round(prof.psi(b[previous], b[latest]), 4) for c, b in bins.items()}
    drifted = {c: v for c, v in sorted(values.items(), key=lambda kv: -kv[1]) if v >= t.max_psi}
    summary = (
        f"shifted vs {previous}: {', '.join(f'{c} ({v:.2f})' for c, v in drifted.items())}"
        if drifted
        else f"no column's PSI vs {previous} reaches {t.max_psi}"
    )
    if skipped:
        summary += f"; not compared (null throughout {previous}): {', '.join(skipped)}"
    worst = max(values.values(), default=0.0)
    detail = {"drifted": drifted, "psi": values, "skipped": skipped, "labels_not_checked": list(data.labels)}
    return CheckResult("psi", not drifted, summary, worst, t.max_psi, detail)


def _label_facts(db: prof.Reader, data: MarketData, counts: pd.DataFrame, column: str) -> dict[str, object]:
    """Known share per snapshot, the last snapshot with a known label, and values other than 0/1."""
    known = {day: int(counts.loc[f"k:{column}", day]) for day in counts.columns}
    bad = int(counts.loc[f"x:{column}"].sum())
    labelled = [day for day, n in known.items() if n > 0]
    latest = data.dates[-1]
    return {
        "known_up_to": str(labelled[-1]) if labelled else None,
        "known_share_latest": round(known.get(latest, 0) / data.counts[latest], 4),
        "known_share": {str(day): round(n / data.counts[day], 4) for day, n in known.items()},
        "non_label_rows": bad,
        "non_label_values": prof.non_label_values(db, data.table, column) if bad else [],
    }


def check_labels(db: prof.Reader, data: MarketData) -> CheckResult:
    """Warning: each label column (role 'label') holds 0/1 where known; NULL is allowed (known late)."""
    if not data.labels and not data.missing_labels:
        return CheckResult("labels", True, "no label column in the contract", 0.0, 0.0)
    if not data.counts:
        return CheckResult("labels", True, "no snapshot held", 0.0, 0.0)
    counts = prof.label_counts(db, data.table, data.labels)
    facts = {column: _label_facts(db, data, counts, column) for column in data.labels}
    problems = [f"{c}: declared as a label but not in {data.table}" for c in data.missing_labels]
    for column, f in facts.items():
        if f["non_label_rows"]:
            examples = f["non_label_values"]
            problems.append(f"{column}: {f['non_label_rows']} value(s) other than 0/1, e.g. {examples}")
        elif f["known_up_to"] is None:
            problems.append(f"{column}: no known label in any snapshot")
    summary = "; ".join(problems) or "; ".join(
        f"{c}: 0/1 where known, known up to {f['known_up_to']} ({f['known_share_latest']:.0%} known on "
        f"{data.dates[-1]})"
        for c, f in facts.items()
    )
    value = float(sum(f["non_label_rows"] for f in facts.values()))
    detail = {"labels": facts, "missing": list(data.missing_labels)}
    return CheckResult("labels", not problems, summary, value, 0.0, detail)
