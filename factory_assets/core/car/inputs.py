"""What a market's ingest works on: its snapshots from the landing folder and any external CARs.

Each snapshot is a `SnapshotInput` (loaded only when needed); what cannot be used at all (a bad
file name, two files for one snapshot, an unreadable external CAR) is a `Rejection` naming the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from factory_assets.core.car.external import ExternalCarSource
from factory_assets.core.car.source import CarReadError, LandingFolder, LandingScan


@dataclass(frozen=True)
class SnapshotInput:
    """One (market, snapshot) to ingest, from a landing file or an external CAR."""

    market: str
    snapshot_date: dt.date
    source: str
    content_hash: Callable[[], str]
    load: Callable[[], pd.DataFrame]


@dataclass(frozen=True)
class Rejection:
    """A snapshot (or landed file) that was not ingested, and why."""

    source: str
    reason: str
    snapshot_date: dt.date | None = None
    failure_cases: list[dict[str, str]] = field(default_factory=list)


def landing_inputs(
    folder: LandingFolder, scan: LandingScan, market: str, customer_key: str
) -> list[SnapshotInput]:
    """The market's landed snapshot files as ingest inputs."""
    return [
        SnapshotInput(
            market, f.snapshot_date, str(f.path), f.content_hash, lambda f=f: folder.read(f, customer_key)
        )
        for f in scan.files_for(market)
    ]


def external_inputs(source: ExternalCarSource, market: str) -> list[SnapshotInput]:
    """The market's snapshots in an external CAR as ingest inputs."""
    return [
        SnapshotInput(
            market,
            day,
            source.source_name(market, day),
            source.content_hash,
            lambda day=day: source.read(market, day),
        )
        for code, day in source.snapshots()
        if code == market
    ]


def collect_inputs(
    folder: LandingFolder, external: Sequence[ExternalCarSource], market: str, customer_key: str
) -> tuple[list[SnapshotInput], list[Rejection]]:
    """The market's snapshots from the landing folder and every external CAR, and what cannot be used.

    Problem files in the market's folder and unreadable external CARs become rejections; a snapshot
    offered by more than one source is ambiguous, so every copy is rejected until one is removed.
    """
    scan = folder.scan()
    rejections = [Rejection(str(p.path), str(p)) for p in scan.problems_for(market)]
    inputs = landing_inputs(folder, scan, market, customer_key)
    for source in external:
        try:
            inputs += external_inputs(source, market)
        except CarReadError as exc:
            rejections.append(Rejection(str(source.mapping.path), str(exc)))
    by_day: dict[dt.date, list[SnapshotInput]] = {}
    for item in inputs:
        by_day.setdefault(item.snapshot_date, []).append(item)
    for day, offered in sorted(by_day.items()):
        if len(offered) > 1:
            names = ", ".join(i.source for i in offered)
            for item in offered:
                reason = f"{item.source}: snapshot {day} of '{market}' is offered by several sources: {names}"
                rejections.append(Rejection(item.source, reason, day))
    return [i for i in inputs if len(by_day[i.snapshot_date]) == 1], rejections
