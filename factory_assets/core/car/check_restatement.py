"""Data Checker 1 on a re-delivered month: compared with the version it replaces, not only its neighbour.

The usual checks compare a snapshot with the one before it; a restatement of a month already held
(old or latest) is also compared with the rows it would replace: row count, customers and every
shared column's distribution (PSI, nulls as a bin). A large change blocks unless the deployment
accepts restatements for the market; then it passes and says so, and the verdict records it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from factory_assets.core.car import profile as prof
from factory_assets.core.car.check_types import CarCheckThresholds, CheckResult

SKIPPED = ("snapshot_date", "_source_file")


@dataclass(frozen=True)
class Restatement:
    """A delivered snapshot beside the version of the same month that `car.<market>` holds."""

    replaced: pd.DataFrame
    delivered: pd.DataFrame
    accepted: bool
    """The deployment accepts restatements for this market (`data_checker_1.accept_restatements`)."""


def _bins(values: pd.Series, edges: np.ndarray) -> dict[str, int]:
    known = pd.to_numeric(values, errors="coerce").astype("float64")
    counts = {prof.NULL_BIN: int(known.isna().sum())}
    positions = np.searchsorted(edges, known.dropna().to_numpy(), side="left")
    for position, n in zip(*np.unique(positions, return_counts=True), strict=True):
        counts[f"b{int(position):03d}"] = int(n)
    return counts


def _levels(values: pd.Series) -> dict[str, int]:
    counts = values.astype("string").fillna(prof.NULL_BIN).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def column_psi(before: pd.Series, after: pd.Series, bins: int) -> float:
    """PSI of one column between two versions: quantile bins of `before` for numbers, levels for text."""
    if pd.api.types.is_numeric_dtype(before) and pd.api.types.is_numeric_dtype(after):
        finite = pd.to_numeric(before, errors="coerce").astype("float64").dropna()
        finite = finite[np.isfinite(finite)]
        edges = (
            np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        )
        return prof.psi(_bins(before, edges), _bins(after, edges))
    return prof.psi(_levels(before), _levels(after))


def compare_versions(restatement: Restatement, customer_key: str, bins: int) -> dict[str, object]:
    """Row change, the share of replaced customers kept, and each shared column's PSI."""
    old, new = restatement.replaced, restatement.delivered
    kept = old[customer_key].isin(set(new[customer_key])).mean()
    shared = [c for c in old.columns if c in new.columns and c not in (customer_key, *SKIPPED)]
    psis = {c: round(column_psi(old[c], new[c], bins), 4) for c in shared}
    return {
        "rows_replaced": len(old),
        "rows_delivered": len(new),
        "row_change": round(abs(len(new) - len(old)) / max(len(old), 1), 4),
        "customers_kept": round(float(kept), 4),
        "psi": dict(sorted(psis.items(), key=lambda kv: -kv[1])),
    }


def check_restatement(
    restatement: Restatement | None, customer_key: str, t: CarCheckThresholds
) -> CheckResult:
    """Blocking: a re-delivered month is close to the version it replaces (rows, customers, distributions).

    A large change passes only where the deployment accepts restatements for the market, and says so.
    """
    if restatement is None:
        return CheckResult("restatement", True, "not a restatement: the month is new", 0.0, 0.0)
    facts = compare_versions(restatement, customer_key, t.psi_bins)
    problems = []
    if facts["row_change"] > t.restatement_max_row_change:
        problems.append(f"rows {facts['rows_replaced']} -> {facts['rows_delivered']}")
    if facts["customers_kept"] < t.restatement_min_key_overlap:
        problems.append(f"only {facts['customers_kept']:.1%} of the replaced customers remain")
    shifted = {c: v for c, v in facts["psi"].items() if v >= t.restatement_max_psi}
    if shifted:
        problems.append(
            "shifted vs the replaced version: " + ", ".join(f"{c} ({v:.2f})" for c, v in shifted.items())
        )
    detail = {**facts, "problems": problems, "accepted": restatement.accepted}
    value = float(len(problems))
    if not problems:
        return CheckResult(
            "restatement", True, "restatement close to the version it replaces", value, 0.0, detail
        )
    summary = "large restatement: " + "; ".join(problems)
    if restatement.accepted:
        summary = "accepted by the deployment (accept_restatements): " + summary
    return CheckResult("restatement", restatement.accepted, summary, value, 0.0, detail)
