"""Recover a release's lost or damaged `.reference.parquet` (Data Checker 2's comparison base).

Without its reference file, the next release of a cell cannot compare its scores with the one in
force (`ReleaseStore.load_reference` raises), so the cell could never publish again. The reference
holds each released customer's natural probability, and the same values exist twice more: in the
release file itself when it publishes probabilities, and in `scores.score_history` (the snapshot and
model version of the release) for a percentile-only release. `restore_reference` rebuilds it from
the first of those that covers every released customer, and writes it under its recorded name:
byte-identical to the lost file in practice (the same rows, the same Parquet writer); if the bytes
differ (another library version), the manifest in force and its kept copy are rewritten with the new
hash, and the outcome says so. The release file that consumers get is never touched.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from factory_assets.core.names import Table
from factory_assets.core.release.publish import reference_frame
from factory_assets.core.release.store import (
    CorruptReleaseError,
    ReleaseManifest,
    ReleaseStore,
    parquet_bytes,
    sha256_bytes,
    write_atomic,
)
from factory_assets.core.warehouse import Warehouse


class ReferenceRecoveryError(RuntimeError):
    """The reference cannot be rebuilt; the message says what is missing."""


def reference_intact(store: ReleaseStore, manifest: ReleaseManifest) -> bool:
    """True if the manifest's reference file is there and matches its recorded sha256."""
    try:
        store.load_reference(manifest)
    except CorruptReleaseError:
        return False
    return True


def _from_release_file(store: ReleaseStore, manifest: ReleaseManifest) -> pd.DataFrame | None:
    if "probability" not in manifest.columns:
        return None
    return store.load_release(manifest)[["customer_id", "probability"]]


def _from_score_history(warehouse: Warehouse, manifest: ReleaseManifest) -> pd.DataFrame | None:
    if not warehouse.table_exists(Table.SCORE_HISTORY):
        return None
    frame = warehouse.query(
        f"select customer_id, probability from {Table.SCORE_HISTORY} "
        "where market = ? and model = ? and model_version = ? and snapshot_date = ?::date",
        [manifest.market, manifest.model, manifest.model_version, manifest.snapshot_date],
    )
    return frame if len(frame) else None


def rebuilt_reference(
    store: ReleaseStore, warehouse: Warehouse, manifest: ReleaseManifest
) -> tuple[pd.DataFrame, str]:
    """The reference rows of the release in force and where they came from."""
    released = set(store.load_release(manifest)["customer_id"].astype(str))
    candidates = [
        ("the release file's probabilities", lambda: _from_release_file(store, manifest)),
        (
            f"{Table.SCORE_HISTORY} ({manifest.snapshot_date}, model {manifest.model_version[:12]})",
            lambda: _from_score_history(warehouse, manifest),
        ),
    ]
    for source, load in candidates:
        frame = load()
        if frame is not None and set(frame["customer_id"].astype(str)) == released:
            return reference_frame(frame), source
    raise ReferenceRecoveryError(
        f"no source holds the probabilities of every customer of release {manifest.release_id}: the "
        f"release publishes {manifest.output_format} and {Table.SCORE_HISTORY} has no matching rows. "
        "Re-run the cell's scores and released_scores, or withdraw the release (withdraw-release)."
    )


def restore_reference(store: ReleaseStore, warehouse: Warehouse, market: str, model: str) -> str:
    """Rewrite the reference file of the cell's release in force; returns what was done, in words."""
    manifest = store.read_manifest(market, model)
    if manifest is None:
        raise ReferenceRecoveryError(f"{market}/{model} has no release in force: nothing to restore")
    if reference_intact(store, manifest):
        return f"reference {manifest.reference_file} is intact (sha256 matches): nothing to do"
    frame, source = rebuilt_reference(store, warehouse, manifest)
    payload = parquet_bytes(frame)
    digest = sha256_bytes(payload)
    write_atomic(store.cell_dir(market, model) / manifest.reference_file, payload)
    if digest == manifest.reference_sha256:
        return f"restored {manifest.reference_file} from {source}: byte-identical to the recorded sha256"
    updated = dataclasses.replace(manifest, reference_sha256=digest)
    store.archive_manifest(updated)
    store.swap_manifest(updated)
    return (
        f"restored {manifest.reference_file} from {source} with a new sha256 {digest[:12]} (was "
        f"{manifest.reference_sha256[:12]}): the manifest of {manifest.release_id} now records it; "
        "the release file is unchanged"
    )
