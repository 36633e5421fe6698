"""A cell's release as the grid shows it: its state, the problem it makes, and whether it is stale.

Read from the columns `reads.releases` adds to the grid: the live release and its publication
(status, operator, reason, overridden checks), whether the latest attempt was held back, and whether
a withdrawal still stands.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from factory_assets.core.specs import ScoreChecks

DEFAULT_MAX_RELEASE_AGE_DAYS = ScoreChecks().max_release_age_days


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _overridden(row: pd.Series) -> str:
    checks = _text(row.get("overridden_checks"))
    names = [item["check"] for item in json.loads(checks)] if checks else []
    return ", ".join(names) or "no recorded check"


def release_state(row: pd.Series) -> str:
    """withdrawn, held back, released under override, released, or '' (never released)."""
    if bool(row["withdrawn"]):
        return "withdrawn"
    if bool(row["held_back"]):
        return "held back"
    if row.get("last_release_status") == "released_under_override":
        return "released under override"
    return "released" if _text(row.get("last_release_id")) else ""


def release_problem(row: pd.Series) -> tuple[str, str] | None:
    """(health, problem) that the release state makes, or None when the release is in order."""
    serving = _text(row["last_release_id"]) or "nothing"
    if bool(row["held_back"]):
        return "failing", f"held back: {row['held_back_reason']} (still serving {serving})"
    if bool(row["withdrawn"]):
        health = "attention" if serving != "nothing" else "failing"
        return health, f"withdrawn {row['withdrawal']} (serving {serving})"
    if row.get("last_release_status") == "released_under_override":
        at = pd.Timestamp(row["last_release_at"]).strftime("%Y-%m-%d %H:%M")
        return "attention", (
            f"released under override: {serving} by {row['last_release_operator']} at {at}: "
            f"{row['last_release_reason']} (overrode {_overridden(row)})"
        )
    return None


def stale_since(row: pd.Series, max_age_days: int, now: dt.datetime) -> dt.date | None:
    """The day the cell's live release became stale (older than `max_age_days`), or None if it is not."""
    released = row.get("last_release_at")
    if not _text(row.get("last_release_id")) or released is None or pd.isna(released):
        return None
    limit = pd.Timestamp(released) + pd.Timedelta(days=max_age_days)
    return limit.date() if limit <= pd.Timestamp(now) else None
