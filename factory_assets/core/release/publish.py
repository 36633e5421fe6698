"""Turn a cell's checked scores into an immutable release and make it the one in force.

The published columns follow the spec's `output.format`: natural probabilities, percentile ranks or
both, always with the decile and the lineage a consumer needs (customer_id, snapshot_date,
model_version, release_id). Reason codes follow as the last columns when the scores carry them
(`output.reason_codes`; `core.model.reasons`): a slot no customer has a reason in is left out, so a
cell that did not opt in publishes none even where `scores.scores` holds the columns for other cells.
The release id is derived from the content, so publishing the same scores twice yields the same id
and no second release.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

from factory_assets.core.model.reason_columns import reason_columns_in, reason_dtype, reason_slot
from factory_assets.core.release.store import (
    ReleaseManifest,
    ReleaseStore,
    csv_bytes,
    parquet_bytes,
)
from factory_assets.core.specs import OutputSpec

SCORE_COLUMNS_BY_FORMAT = {
    "probability": ["probability"],
    "percentile": ["percentile"],
    "both": ["probability", "percentile"],
}


def output_columns(output_format: str) -> list[str]:
    """The columns of a release file in the given format, in file order."""
    scores = SCORE_COLUMNS_BY_FORMAT[output_format]
    return ["customer_id", "snapshot_date", *scores, "decile", "model_version", "release_id"]


def published_reasons(scores: pd.DataFrame) -> list[str]:
    """The reason columns of `scores` to publish: every slot in which some customer has a reason."""
    columns = reason_columns_in(scores.columns)
    kept = {reason_slot(c) for c in columns if c.endswith("_feature") and scores[c].notna().any()}
    return [c for c in columns if reason_slot(c) in kept]


def release_frame(scores: pd.DataFrame, output_format: str) -> pd.DataFrame:
    """The published rows (without release_id): best customers first, ties by customer_id."""
    columns = [c for c in output_columns(output_format) if c != "release_id"]
    reasons = published_reasons(scores)
    frame = scores[columns + reasons].copy()
    frame = frame.astype({c: reason_dtype(c) for c in reasons})
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"]).dt.date
    frame["decile"] = frame["decile"].astype("int64")
    rank_by = SCORE_COLUMNS_BY_FORMAT[output_format][-1]
    frame = frame.sort_values([rank_by, "customer_id"], ascending=[False, True], kind="mergesort")
    return frame.reset_index(drop=True)


def release_id_for(market: str, model: str, output_format: str, frame: pd.DataFrame) -> str:
    """`<snapshot yyyymmdd>-<12 hex>`: a hash of the cell, the format and every published value."""
    digest = hashlib.sha256(f"{market}|{model}|{output_format}|".encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    snapshots = frame["snapshot_date"].dropna()
    prefix = snapshots.iloc[0].strftime("%Y%m%d") if len(snapshots) else "nosnapshot"
    return f"{prefix}-{digest.hexdigest()[:12]}"


def prospective_release_id(market: str, model: str, scores: pd.DataFrame, output: OutputSpec) -> str:
    """The release id `publish` would give these scores (nothing is written)."""
    return release_id_for(market, model, output.format, release_frame(scores, output.format))


def reference_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """customer_id and natural probability of released scores, by customer_id: the reference file."""
    frame = scores[["customer_id", "probability"]].astype({"probability": "float64"})
    return frame.sort_values("customer_id", kind="mergesort").reset_index(drop=True)


def publish(
    store: ReleaseStore,
    market: str,
    model: str,
    scores: pd.DataFrame,
    output: OutputSpec,
    released_at: dt.datetime,
) -> tuple[ReleaseManifest, bool]:
    """Write the release files and swap the manifest; returns the manifest in force and whether it is new.

    If the manifest already names this content's release id nothing is written (an idempotent rerun).
    Files are written before the manifest, so a crash leaves the previous release in force.
    """
    frame = release_frame(scores, output.format)
    release_id = release_id_for(market, model, output.format, frame)
    current = store.read_manifest(market, model)
    if current is not None and current.release_id == release_id:
        if store.archived_manifest(market, model, release_id) is None:  # released before archiving
            store.archive_manifest(current)
        return current, False
    frame.insert(len(output_columns(output.format)) - 1, "release_id", release_id)
    folder = store.cell_dir(market, model)
    names = {"file": f"{release_id}.parquet", "reference": f"{release_id}.reference.parquet"}
    sha = store.write_immutable(folder / names["file"], parquet_bytes(frame))
    reference_sha = store.write_immutable(folder / names["reference"], parquet_bytes(reference_frame(scores)))
    csv_name, csv_sha = None, None
    if output.csv:
        csv_name = f"{release_id}.csv"
        csv_sha = store.write_immutable(folder / csv_name, csv_bytes(frame))
    manifest = ReleaseManifest(
        market=market,
        model=model,
        release_id=release_id,
        file=names["file"],
        sha256=sha,
        rows=len(frame),
        snapshot_date=frame["snapshot_date"].iloc[0].isoformat() if len(frame) else "",
        model_version=str(frame["model_version"].iloc[0]) if len(frame) else "",
        released_at=released_at.isoformat(timespec="seconds"),
        output_format=output.format,
        columns=list(frame.columns),
        reference_file=names["reference"],
        reference_sha256=reference_sha,
        csv_file=csv_name,
        csv_sha256=csv_sha,
    )
    store.archive_manifest(manifest)
    store.swap_manifest(manifest)
    return manifest, True
