"""Retention: prune old CAR snapshots, unreferenced model artefacts and superseded release files.

The policy (`RetentionPolicy`, documented in docs/reliability.md) never deletes what the factory
still needs:

- **CAR snapshots** older than the latest `car_months` snapshots of a market are deleted from
  `car.<market>` and from the landing folder. The window may not be shorter than what the specs
  read (`required_car_months`: training window + horizon + longest history window + test
  snapshots), so training and history features never lose their input. The ingest ledger
  (`ops.car_files`) keeps its rows: it is the audit trail of what arrived.
- **Model artefacts** (`models/<version>.cbm` and `.reference.parquet`) are kept while referenced by
  a current champion, by a release in force or kept, by a decision taken in the last
  `decision_days` (champion, challenger or live version), or by a model trained in that period (a
  challenger awaiting its decision). Registry rows are never deleted.
- **Release files** of a cell other than the release in force (its `current.json`) and the last
  `keep_releases` released ones (by `released_at` in the release ledger) are deleted. The manifest
  is never touched.

Files younger than `grace_hours` are never deleted, so a write in progress (a release whose files
are written before its manifest, an artefact saved before its registration) is safe. Planning reads
only; `apply_retention` deletes exactly what the plan lists, rows first (one transaction per
market), then files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from factory_assets.core.clock import utc_now
from factory_assets.core.names import Table, car_table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.store import MANIFEST_NAME, ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse, transaction

log = logging.getLogger(__name__)
_SNAPSHOT_FILE = re.compile(r"^car_(\d{4}-\d{2}-\d{2})\.(parquet|csv)$")


class RetentionError(ValueError):
    """A retention policy that would delete data the factory still needs."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How much history to keep; every limit errs on the side of keeping."""

    car_months: int = 36
    """Latest CAR snapshots kept per market (at least `required_car_months(specs)`)."""
    keep_releases: int = 3
    """Released versions kept per cell besides the one in force."""
    decision_days: int = 180
    """Artefacts named by a decision (or trained) within this many days are kept."""
    grace_hours: float = 24.0
    """Files younger than this are never deleted (a write may be in progress)."""

    def __post_init__(self) -> None:
        if self.car_months < 1 or self.keep_releases < 0 or self.decision_days < 0 or self.grace_hours < 0:
            raise RetentionError(f"invalid retention policy {self}: limits must be positive")


@dataclass
class RetentionPlan:
    """What retention would delete (and why the rest stays)."""

    car_snapshots: dict[str, list[dt.date]] = field(default_factory=dict)
    landing_files: list[Path] = field(default_factory=list)
    artefacts: list[Path] = field(default_factory=list)
    release_files: list[Path] = field(default_factory=list)
    kept_versions: dict[str, str] = field(default_factory=dict)
    """Model version -> the first reason it is kept."""

    def files(self) -> list[Path]:
        """Every file the plan deletes."""
        return [*self.landing_files, *self.artefacts, *self.release_files]

    def summary(self) -> dict[str, int]:
        """Counts per kind, for logs and metadata."""
        return {
            "car_snapshots": sum(len(v) for v in self.car_snapshots.values()),
            "landing_files": len(self.landing_files),
            "artefacts": len(self.artefacts),
            "release_files": len(self.release_files),
        }


def required_car_months(specs: Mapping[str, ModelSpec]) -> int:
    """The CAR history (in monthly snapshots) the most demanding spec reads."""
    needs = []
    for spec in specs.values():
        history = spec.features.history
        longest = max([*history.windows, *history.lags, 1])
        needs.append(
            spec.sampling.training_window_months
            + spec.target.horizon
            + longest
            + spec.sampling.test_snapshots
        )
    return max(needs, default=1)


def _car_markets(warehouse: Warehouse) -> list[str]:
    rows = warehouse.query(
        "select distinct table_name from information_schema.tables where table_schema = 'car'"
    )
    return sorted(rows["table_name"])


def _old_snapshots(warehouse: Warehouse, market: str, keep: int) -> list[dt.date]:
    table = car_table(market)
    dates = warehouse.query(f"select distinct snapshot_date from {table} order by snapshot_date desc")
    return sorted(d.date() if hasattr(d, "date") else d for d in dates["snapshot_date"].iloc[keep:])


def _is_old(path: Path, now: dt.datetime, grace_hours: float) -> bool:
    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    return now - modified >= dt.timedelta(hours=grace_hours)


def _landing_files(paths: FactoryPaths, market: str, dates: Iterable[dt.date]) -> list[Path]:
    wanted = {d.isoformat() for d in dates}
    folder = paths.landing / market
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (m := _SNAPSHOT_FILE.match(p.name)) and m.group(1) in wanted)


def _released_ids(warehouse: Warehouse, market: str, model: str, keep: int) -> list[str]:
    if keep == 0 or not warehouse.table_exists(Table.RELEASES):
        return []
    rows = warehouse.query(
        "select release_id from release.releases where market = ? and model = ? "
        "and status in ('released', 'released_under_override') order by released_at desc limit ?",
        [market, model, keep],
    )
    return list(rows["release_id"])


def _release_files(
    warehouse: Warehouse, store: ReleaseStore, policy: RetentionPolicy, now: dt.datetime
) -> tuple[list[Path], dict[str, str]]:
    """Superseded release files, and the model versions of the releases that stay."""
    doomed, versions = [], {}
    for folder in sorted(p for p in store.root.glob("*/*") if p.is_dir()):
        market, model = folder.parent.name, folder.name
        manifest = store.read_manifest(market, model)
        keep = set(_released_ids(warehouse, market, model, policy.keep_releases))
        if manifest is not None:
            keep.add(manifest.release_id)
            versions.setdefault(manifest.model_version, f"release in force {market}/{model}")
        for path in sorted(folder.iterdir()):
            if path.name == MANIFEST_NAME or path.name.split(".")[0] in keep:
                continue
            if _is_old(path, now, policy.grace_hours):
                doomed.append(path)
    return doomed, versions


def _referenced_versions(warehouse: Warehouse, policy: RetentionPolicy, now: dt.datetime) -> dict[str, str]:
    """Model versions that must keep their artefacts, each with the reason."""
    keep: dict[str, str] = {}
    since = now - dt.timedelta(days=policy.decision_days)
    if warehouse.table_exists(Table.DECISIONS):
        live = warehouse.query(
            "select market, model, live_version from registry.decisions "
            "qualify row_number() over "
            "(partition by market, model order by decided_at desc, decision_id desc) = 1"
        )
        for row in live.itertuples(index=False):
            if isinstance(row.live_version, str):
                keep.setdefault(row.live_version, f"current champion of {row.market}/{row.model}")
        recent = warehouse.query(
            "select champion_version, challenger_version, live_version from registry.decisions "
            "where decided_at >= ?",
            [since],
        )
        for version in recent.stack().dropna():
            keep.setdefault(str(version), f"named by a decision since {since:%Y-%m-%d}")
    if warehouse.table_exists(Table.MODELS):
        fresh = warehouse.query("select model_version from registry.models where trained_at >= ?", [since])
        for version in fresh["model_version"]:
            keep.setdefault(str(version), f"trained since {since:%Y-%m-%d}")
    return keep


def _artefacts(
    models_dir: Path, keep: Mapping[str, str], policy: RetentionPolicy, now: dt.datetime
) -> list[Path]:
    if not models_dir.is_dir():
        return []
    return sorted(
        p
        for p in models_dir.iterdir()
        if p.is_file()
        and p.name.split(".")[0] not in keep
        and not p.name.startswith(".")
        and _is_old(p, now, policy.grace_hours)
    )


def plan_retention(
    paths: FactoryPaths,
    specs: Mapping[str, ModelSpec],
    policy: RetentionPolicy | None = None,
    now: dt.datetime | None = None,
) -> RetentionPlan:
    """What the policy deletes, read-only; refuses a CAR window shorter than the specs read."""
    policy = policy or RetentionPolicy()
    now = now or utc_now()
    needed = required_car_months(specs)
    if policy.car_months < needed:
        raise RetentionError(
            f"car_months={policy.car_months} is shorter than the {needed} monthly snapshots the model specs "
            "read (training window + horizon + longest history window + test snapshots)"
        )
    if not paths.warehouses().markets():
        raise RetentionError(
            f"no warehouse at {paths.warehouse}: without the registry nothing is provably unused"
        )
    warehouse = paths.warehouses().union()
    plan = RetentionPlan()
    for market in _car_markets(warehouse):
        old = _old_snapshots(warehouse, market, policy.car_months)
        if old:
            plan.car_snapshots[market] = old
            plan.landing_files += _landing_files(paths, market, old)
    plan.release_files, release_versions = _release_files(
        warehouse, ReleaseStore(paths.releases), policy, now
    )
    plan.kept_versions = {**release_versions, **_referenced_versions(warehouse, policy, now)}
    plan.artefacts = _artefacts(paths.models, plan.kept_versions, policy, now)
    return plan


def apply_retention(paths: FactoryPaths, plan: RetentionPlan) -> dict[str, int]:
    """Delete what `plan` lists: CAR rows first (one transaction per market), then the files."""
    for market, dates in plan.car_snapshots.items():
        table, warehouse = car_table(market), paths.warehouses().market(market)

        def delete(con, table=table, dates=dates) -> None:
            with transaction(con):
                con.execute(f"delete from {table} where snapshot_date in (select unnest(?::date[]))", [dates])

        warehouse.execute(delete)
        log.info(
            "retention: deleted %d snapshot(s) of %s: %s",
            len(dates),
            table,
            json.dumps([str(d) for d in dates]),
        )
    for path in plan.files():
        path.unlink(missing_ok=True)
        log.info("retention: deleted %s", path)
    return plan.summary()
