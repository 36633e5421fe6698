"""What the landing sensor should do on one tick, decided from the folder listing and its cursor.

Pure: the listing (`LandingScan`, by name and stat only) and the cursor go in; the markets to add,
the runs to request (one per market with new or changed files, keyed by those files) and the new
cursor come out. Problems are carried in the cursor so that each is logged once, not every tick.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from factory_assets.core.car.external import ExternalCarSource
from factory_assets.core.car.source import CarReadError, LandingScan
from factory_assets.core.specs import KEY_PATTERN

CURSOR_VERSION = 1


@dataclass(frozen=True)
class TickPlan:
    """One sensor tick: partitions to add, runs to request, problems to report, the next cursor."""

    new_markets: list[str]
    runs: dict[str, str]
    """market -> run key (the market and a hash of its new or changed files)."""
    changed_files: dict[str, list[str]]
    problems: list[str]
    new_problems: list[str]
    cursor: str
    pending: list[str] = field(default_factory=list)


def parse_cursor(cursor: str | None) -> dict[str, object]:
    """The cursor as a dict; an empty, foreign or older cursor starts afresh (re-ingest is idempotent)."""
    if not cursor:
        return {"files": {}, "external": None, "problems": []}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        return {"files": {}, "external": None, "problems": []}
    if not isinstance(state, dict) or state.get("version") != CURSOR_VERSION:
        return {"files": {}, "external": None, "problems": []}
    return state


def _run_key(market: str, changes: list[str]) -> str:
    digest = hashlib.sha256(json.dumps(sorted(changes)).encode("utf-8")).hexdigest()[:16]
    return f"{market}:{digest}"


def _one_external_change(
    external: ExternalCarSource, seen: object
) -> tuple[str | None, dict[str, str], list[str]]:
    """(fingerprint, {market: change token}, problems) of one external CAR, if it changed."""
    try:
        fingerprint = external.stat_fingerprint()
        if fingerprint == seen:
            return fingerprint, {}, []
        markets = external.markets()
    except CarReadError as exc:
        return None, {}, [str(exc)]
    token = f"external:{fingerprint[:16]}"
    valid = {m: token for m in markets if KEY_PATTERN.match(m)}
    problems = [
        f"external CAR {external.mapping.path}: market '{m}' is not a valid partition key "
        f"({KEY_PATTERN.pattern})"
        for m in markets
        if m not in valid
    ]
    return fingerprint, valid, problems


def _external_changes(
    sources: Sequence[ExternalCarSource], seen: object
) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """({mapping: fingerprint}, {market: change tokens}, problems) over every external CAR."""
    seen_by_mapping = seen if isinstance(seen, dict) else {}  # cursors before v-multi held one string
    fingerprints: dict[str, str] = {}
    markets: dict[str, list[str]] = {}
    problems: list[str] = []
    for source in sources:
        key = str(source.mapping.path)
        fingerprint, valid, found = _one_external_change(source, seen_by_mapping.get(key))
        if fingerprint is not None:
            fingerprints[key] = fingerprint
        elif key in seen_by_mapping:
            fingerprints[key] = seen_by_mapping[key]
        for market, token in valid.items():
            markets.setdefault(market, []).append(token)
        problems += found
    return fingerprints, markets, problems


def _tokens(scan: LandingScan, market: str) -> list[str]:
    return [f"{f.name}@{f.mtime}:{f.size}" for f in scan.files_for(market)]


def _landing_changes(
    scan: LandingScan, seen_files: dict[str, list[float]], known_markets: Collection[str]
) -> dict[str, list[str]]:
    """Per market, its new or changed files and the files withdrawn since the last tick."""
    changed: dict[str, list[str]] = {}
    for item in scan.files:
        if seen_files.get(item.name) != [item.mtime, item.size]:
            changed.setdefault(item.market, []).append(f"{item.name}@{item.mtime}:{item.size}")
    current = {f.name for f in scan.files}
    for name in sorted(set(seen_files) - current):
        # A withdrawn (or now ambiguous) file changes what the market's checks see: rerun them.
        market = name.split("/", 1)[0]
        if KEY_PATTERN.match(market) and market in known_markets:
            changed.setdefault(market, []).append(f"{name}@removed:{seen_files[name]}")
    return changed


def plan_tick(
    scan: LandingScan,
    cursor: str | None,
    known_markets: Collection[str],
    external: Sequence[ExternalCarSource] = (),
) -> TickPlan:
    """Decide one tick: new markets, one run per market with new or changed files, the next cursor."""
    state = parse_cursor(cursor)
    files = {f.name: [f.mtime, f.size] for f in scan.files}
    changed = _landing_changes(scan, state.get("files", {}), known_markets)  # type: ignore[arg-type]
    fingerprints, external_markets, external_problems = _external_changes(external, state.get("external"))
    for market, tokens in external_markets.items():
        changed.setdefault(market, []).extend(tokens)
    markets_with_data = set(scan.markets()) | set(external_markets)
    new_markets = sorted(markets_with_data - set(known_markets))
    runs = {
        m: _run_key(m, changed.get(m) or _tokens(scan, m)) for m in sorted(set(changed) | set(new_markets))
    }
    problems = [str(p) for p in scan.problems] + external_problems
    seen_problems = set(state.get("problems", []))  # type: ignore[arg-type]
    next_state = {
        "version": CURSOR_VERSION,
        "files": files,
        "external": fingerprints,
        "problems": problems,
    }
    return TickPlan(
        new_markets=new_markets,
        runs=runs,
        changed_files={m: sorted(v) for m, v in changed.items()},
        problems=problems,
        new_problems=[p for p in problems if p not in seen_problems],
        cursor=json.dumps(next_state, sort_keys=True),
        pending=[str(p) for p in scan.pending],
    )
