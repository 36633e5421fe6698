"""The factory's clock: one definition of "now"."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """Now in UTC as a naive timestamp (how the warehouse stores times)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
