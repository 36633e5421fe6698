"""Read-side of the release store for the HTTP API: released scores cached in memory per release id.

Each lookup stats the cell's manifest and the release file it names (inode, mtime, size): a changed
manifest is re-read, a new release id loads its file once, and a release file deleted, replaced or
touched under a running service is loaded and verified again (so it stops being served the moment it
no longer matches its manifest); otherwise a lookup is a dict hit. A release is verified against the
manifest's sha256 when it is loaded; a corrupt or missing file makes that cell unavailable (with the
reason) while every other cell keeps answering. Nothing here opens the warehouse.

A release with reason codes (`reason_<k>_feature`, `_value`, `_contribution` columns) gives each row a
`reasons` list, largest contribution first; a release without them gives no `reasons` at all.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from factory_assets.core.model.reason_columns import KINDS, reason_column, reason_columns_in, reason_slot
from factory_assets.core.release.store import ReleaseManifest, ReleaseStore, ReleaseStoreError
from factory_assets.core.specs import KEY_PATTERN

SCORE_FIELDS = ("probability", "percentile")


ReasonSlot = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One reason slot of a release: feature names, values as text (None where missing), contributions."""


class UnknownCellError(LookupError):
    """No release exists for the market x model (or the key is not a valid market or model)."""


class ReleaseUnavailableError(RuntimeError):
    """The cell's release exists but cannot be served (corrupt or missing file, broken manifest)."""


@dataclass(frozen=True)
class LoadedRelease:
    """One release held in memory: column arrays plus a customer index and score orders."""

    manifest: ReleaseManifest
    customer_ids: np.ndarray
    columns: dict[str, np.ndarray]
    index: dict[str, int]
    order: dict[str, np.ndarray]
    reasons: tuple[ReasonSlot, ...] = ()
    """The release's reason slots, best first; empty when the release carries no reason codes."""
    rendered: dict[str, list[str]] = field(default_factory=dict, compare=False)
    """Per score field, the JSON text of the best rows so far (grown on demand by `top_json`)."""
    render_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def score_fields(self) -> list[str]:
        """The score columns this release publishes (its output format)."""
        return [f for f in SCORE_FIELDS if f in self.columns]

    def row(self, position: int) -> dict[str, object]:
        """One customer's published values, JSON-ready."""
        values: dict[str, object] = {"customer_id": str(self.customer_ids[position])}
        for name, column in self.columns.items():
            values[name] = _json_value(column[position])
        if self.reasons:
            values["reasons"] = self.reasons_of(position)
        return values

    def reasons_of(self, position: int) -> list[dict[str, object]]:
        """One customer's reason codes, largest absolute contribution first (a missing value is left out)."""
        found: list[dict[str, object]] = []
        for features, values, contributions in self.reasons:
            if features[position] is None:
                continue
            reason = {"feature": features[position], "value": values[position]}
            reason["contribution"] = _json_value(contributions[position])
            found.append({k: v for k, v in reason.items() if v is not None})
        return found

    def lookup(self, customer_id: str) -> dict[str, object] | None:
        """The customer's row, or None if the customer is not in this release."""
        position = self.index.get(customer_id)
        return None if position is None else self.row(position)

    def top(self, n: int, by: str) -> list[dict[str, object]]:
        """The n best customers by `by` (highest first, ties by customer_id)."""
        return [self.row(int(p)) for p in self.order[by][:n]]

    def top_json(self, n: int, by: str, head: dict[str, object]) -> str:
        """`top(n, by)` as a JSON list, each row led by `head` and without null values.

        Rows are rendered once per release and field and then reused: a top-N request joins
        strings instead of building and validating n dicts (the API's heaviest request).
        """
        done = self.rendered.setdefault(by, [])
        if len(done) < n:
            with self.render_lock:
                done.extend(row_json(head, self.row(int(p))) for p in self.order[by][len(done) : n])
        return "[" + ",".join(done[:n]) + "]"


def row_json(head: dict[str, object], row: dict[str, object]) -> str:
    """`head` then `row` as compact JSON, dropping null values (as the API's models exclude them)."""
    return json.dumps({**head, **{k: v for k, v in row.items() if v is not None}}, separators=(",", ":"))


def _json_value(value: object) -> object:
    if isinstance(value, np.floating):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


def load_release(store: ReleaseStore, manifest: ReleaseManifest) -> LoadedRelease:
    """Read and verify a release file and build its in-memory lookup structures."""
    frame = store.load_release(manifest)
    ids = frame["customer_id"].astype(str).to_numpy()
    reasons = reason_columns_in(frame.columns)
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        if name == "customer_id" or name in reasons:
            continue
        if name == "snapshot_date":
            columns[name] = pd.to_datetime(frame[name]).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
        elif name in SCORE_FIELDS:
            columns[name] = frame[name].astype("float64").to_numpy()
        elif name == "decile":
            columns[name] = frame[name].astype("int64").to_numpy()
        else:
            columns[name] = frame[name].astype(str).to_numpy()
    order = {
        name: np.lexsort((ids, -frame[name].astype(float).to_numpy()))
        for name in SCORE_FIELDS
        if name in frame.columns
    }
    index = dict(zip(ids.tolist(), range(len(ids)), strict=True))
    return LoadedRelease(manifest, ids, columns, index, order, reasons=reason_slots(frame))


def _texts(column: pd.Series) -> np.ndarray:
    """A text column as an object array with None (not NaN or NA) where it is null."""
    text = column.astype(object)
    return text.where(text.notna(), None).to_numpy(dtype=object)


def reason_slots(frame: pd.DataFrame) -> tuple[ReasonSlot, ...]:
    """The reason slots of a release frame, best first (every slot whose three columns are present)."""
    present = set(frame.columns)
    slots = sorted({reason_slot(c) for c in reason_columns_in(present)})
    found = []
    for k in slots:
        names = [reason_column(k, kind) for kind in KINDS]
        if set(names) <= present:
            feature, value, contribution = (frame[n] for n in names)
            found.append((_texts(feature), _texts(value), contribution.astype("float64").to_numpy()))
    return tuple(found)


Signature = tuple[int, int, int]


def _stat(path: Path) -> Signature | None:
    """(inode, mtime, size) of `path`, or None when it does not exist."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@dataclass
class _CellState:
    signature: Signature
    release: LoadedRelease | None
    error: str | None
    file: Path | None = None
    """The release file the manifest names (None when the manifest could not be read)."""
    file_signature: Signature | None = None

    def current(self, signature: Signature) -> bool:
        """True while neither the manifest nor the release file it names changed on disk."""
        if self.signature != signature:
            return False
        return self.file is None or _stat(self.file) == self.file_signature


class ReleaseReader:
    """Thread-safe, cached access to every cell's release in force under a releases root."""

    def __init__(self, root: Path) -> None:
        self.store = ReleaseStore(Path(root))
        self._cells: dict[tuple[str, str], _CellState] = {}
        self._releases: dict[tuple[str, Signature | None], LoadedRelease] = {}
        self._lock = threading.Lock()

    def _signature(self, market: str, model: str) -> Signature:
        if not (KEY_PATTERN.match(market) and KEY_PATTERN.match(model)):
            raise UnknownCellError(f"no release for {market}/{model}: not a valid market or model key")
        signature = _stat(self.store.manifest_path(market, model))
        if signature is None:
            raise UnknownCellError(f"no release for {market}/{model}")
        return signature

    def cached(self, market: str, model: str) -> LoadedRelease | None:
        """The release in force if it is already in memory (no file is read), else None.

        Cheap enough for an event loop: one stat of the manifest and a dict lookup.
        """
        state = self._cells.get((market, model))
        if state is None or not state.current(self._signature(market, model)):
            return None
        if state.release is None:
            raise ReleaseUnavailableError(state.error)
        return state.release

    def get(self, market: str, model: str) -> LoadedRelease:
        """The release in force for the cell; raises `UnknownCellError` or `ReleaseUnavailableError`."""
        signature = self._signature(market, model)
        state = self._cells.get((market, model))
        if state is None or not state.current(signature):
            with self._lock:
                state = self._cells.get((market, model))
                if state is None or not state.current(signature):
                    state = self._refresh(market, model, signature)
        if state.release is None:
            raise ReleaseUnavailableError(state.error)
        return state.release

    def _refresh(self, market: str, model: str, signature: Signature) -> _CellState:
        file, file_signature = None, None
        try:
            manifest = self.store.read_manifest(market, model)
            if manifest is None:
                raise UnknownCellError(f"no release for {market}/{model}")
            file = self.store.cell_dir(market, model) / manifest.file
            file_signature = _stat(file)
            key = (manifest.release_id, file_signature)
            release = self._releases.get(key)
            if release is None:
                release = load_release(self.store, manifest)
                self._releases[key] = release
            state = _CellState(signature, release, None, file, file_signature)
        except ReleaseStoreError as exc:
            error = f"release of {market}/{model} unavailable: {exc}"
            state = _CellState(signature, None, error, file, file_signature)
        self._cells[(market, model)] = state
        self._forget_unused()
        return state

    def _forget_unused(self) -> None:
        in_use = {
            (s.release.manifest.release_id, s.file_signature)
            for s in self._cells.values()
            if s.release is not None
        }
        for key in [k for k in self._releases if k not in in_use]:
            del self._releases[key]

    def cells(self) -> list[tuple[str, str]]:
        """Every cell with a manifest."""
        return self.store.cells()
