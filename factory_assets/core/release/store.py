"""The release store: immutable release files and one atomically replaced manifest per cell.

Layout under the root (`<data>/releases`): `<market>/<model>/<release_id>.parquet` (and `.csv` when
the spec asks) hold what consumers get; `<market>/<model>/<release_id>.reference.parquet` keeps the
released natural probabilities for Data Checker 2's comparison with the next release (a
percentile-only release does not publish them); `<market>/<model>/current.json` names the release in
force, and `<market>/<model>/<release_id>.manifest.json` keeps each release's own manifest so that a
withdrawal can put an earlier release back in force. Files are written to a temporary name, fsynced
and renamed, so a reader sees either the old or the new manifest and never a manifest whose files
are missing or half written.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from factory_assets.core.specs import KEY_PATTERN

MANIFEST_NAME = "current.json"


class ReleaseStoreError(RuntimeError):
    """A release file or manifest that cannot be used; the message names the file and the cause."""


class CorruptReleaseError(ReleaseStoreError):
    """A manifest or release file that is unreadable or does not match its recorded sha256."""


@dataclass(frozen=True)
class ReleaseManifest:
    """What `current.json` says about the release in force for one cell."""

    market: str
    model: str
    release_id: str
    file: str
    sha256: str
    rows: int
    snapshot_date: str
    model_version: str
    released_at: str
    output_format: str
    columns: list[str]
    reference_file: str
    reference_sha256: str
    csv_file: str | None = None
    csv_sha256: str | None = None

    def to_json(self) -> str:
        """The manifest as stable, readable JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: Path) -> ReleaseManifest:
        """Parse a manifest; a broken one raises `CorruptReleaseError` naming `source`."""
        try:
            return cls(**json.loads(text))
        except (json.JSONDecodeError, TypeError) as exc:
            raise CorruptReleaseError(f"manifest {source} is not a valid release manifest: {exc}") from exc


def sha256_bytes(payload: bytes) -> str:
    """Hex sha256 of `payload`."""
    return hashlib.sha256(payload).hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteFailedError(OSError):
    """A file that could not be written; the message names it, the cause, and says nothing was replaced."""


def write_failed(path: Path, exc: OSError) -> WriteFailedError:
    """`exc` (raised while writing `path`) as a `WriteFailedError` naming the path, with a hint."""
    code = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno is not None else "no errno"
    hint = " (the disk is full: free space, then run again)" if exc.errno == errno.ENOSPC else ""
    error = WriteFailedError(
        f"cannot write {path}: {exc.strerror or exc} [{code}]{hint}; nothing was replaced, the "
        "previous file (if any) stays in force"
    )
    error.errno = exc.errno
    return error


def write_atomic(path: Path, payload: bytes) -> None:
    """Write `payload` to `path` so that readers see the old file or the whole new one, never a part.

    An `OSError` (a full disk, no permission) becomes a `WriteFailedError` naming `path`.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_failed(path, exc) from exc
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise write_failed(path, exc) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write(path: Path, payload: bytes) -> None:
    """`write_atomic` for the store: any `OSError` it lets through still names `path`."""
    try:
        write_atomic(path, payload)
    except WriteFailedError:
        raise
    except OSError as exc:
        raise write_failed(path, exc) from exc


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Parquet bytes (deterministic for the same data and library versions)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV bytes, in row order: the bytes `frame.to_csv(index=False)` gives.

    DuckDB's writer (one thread, so rows keep their order) is ~7x faster than pandas' on a
    release; quoting, float and date formatting match pandas (tests/test_release_store.py).
    """
    with tempfile.TemporaryDirectory(prefix="csv_") as folder:
        out = Path(folder) / "release.csv"
        con = duckdb.connect()
        try:
            con.execute("set threads = 1")
            con.register("release_rows", pa.Table.from_pandas(frame, preserve_index=False))
            con.execute(f"copy release_rows to '{out}' (format csv, header, delimiter ',')")
        finally:
            con.close()
        return out.read_bytes()


class ReleaseStore:
    """Release files and manifests under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def cell_dir(self, market: str, model: str) -> Path:
        """The folder of one cell's releases; keys are checked so no path leaves the root."""
        for key in (market, model):
            if not KEY_PATTERN.match(key):
                raise ValueError(f"'{key}' is not a valid market or model key ({KEY_PATTERN.pattern})")
        return self.root / market / model

    def manifest_path(self, market: str, model: str) -> Path:
        """Where the cell's manifest lives (it may not exist yet)."""
        return self.cell_dir(market, model) / MANIFEST_NAME

    def read_manifest(self, market: str, model: str) -> ReleaseManifest | None:
        """The manifest in force for the cell, or None if the cell was never released."""
        path = self.manifest_path(market, model)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return ReleaseManifest.from_json(text, path)

    def cells(self) -> list[tuple[str, str]]:
        """Every (market, model) with a manifest, sorted."""
        found = {(p.parent.parent.name, p.parent.name) for p in self.root.glob(f"*/*/{MANIFEST_NAME}")}
        return sorted(c for c in found if KEY_PATTERN.match(c[0]) and KEY_PATTERN.match(c[1]))

    def write_immutable(self, path: Path, payload: bytes) -> str:
        """Write a release file once; rewriting it with different bytes is refused. Returns its sha256."""
        digest = sha256_bytes(payload)
        if path.exists():
            existing = sha256_bytes(path.read_bytes())
            if existing != digest:
                raise ReleaseStoreError(
                    f"release file {path} exists with different content (sha256 {existing[:12]} != "
                    f"{digest[:12]}): release files are immutable"
                )
            return digest
        _write(path, payload)
        return digest

    def swap_manifest(self, manifest: ReleaseManifest) -> Path:
        """Make `manifest` the release in force, after checking that the files it names are there."""
        folder = self.cell_dir(manifest.market, manifest.model)
        for name in (manifest.file, manifest.reference_file, manifest.csv_file):
            if name is not None and not (folder / name).is_file():
                raise ReleaseStoreError(
                    f"manifest for {manifest.release_id} names missing file {folder / name}"
                )
        path = folder / MANIFEST_NAME
        _write(path, manifest.to_json().encode("utf-8"))
        return path

    def archive_path(self, market: str, model: str, release_id: str) -> Path:
        """Where the manifest of one release (in force or not) is kept."""
        return self.cell_dir(market, model) / f"{release_id}.manifest.json"

    def archive_manifest(self, manifest: ReleaseManifest) -> Path:
        """Keep a copy of `manifest` under its release id (replaced if the release is published again)."""
        path = self.archive_path(manifest.market, manifest.model, manifest.release_id)
        _write(path, manifest.to_json().encode("utf-8"))
        return path

    def archived_manifest(self, market: str, model: str, release_id: str) -> ReleaseManifest | None:
        """The kept manifest of `release_id`, or None (released before manifests were kept, or pruned)."""
        path = self.archive_path(market, model, release_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return ReleaseManifest.from_json(text, path)

    def retire_manifest(self, market: str, model: str) -> None:
        """Put no release in force for the cell (the API then answers 404); the release files stay."""
        path = self.manifest_path(market, model)
        path.unlink()
        _fsync_dir(path.parent)

    def _read_verified(self, path: Path, expected_sha: str) -> bytes:
        try:
            payload = path.read_bytes()
        except FileNotFoundError as exc:
            raise CorruptReleaseError(f"release file {path} named by the manifest is missing") from exc
        actual = sha256_bytes(payload)
        if actual != expected_sha:
            raise CorruptReleaseError(
                f"release file {path} is corrupt: sha256 {actual[:12]} does not match the manifest's "
                f"{expected_sha[:12]}"
            )
        return payload

    def _read_parquet(self, path: Path, expected_sha: str) -> pd.DataFrame:
        payload = self._read_verified(path, expected_sha)
        try:
            return pd.read_parquet(io.BytesIO(payload))
        except Exception as exc:  # any decoder error means the same thing: this file is unusable
            raise CorruptReleaseError(f"release file {path} is not readable Parquet: {exc}") from exc

    def load_release(self, manifest: ReleaseManifest) -> pd.DataFrame:
        """The published rows of a release, verified against the manifest's sha256."""
        frame = self._read_parquet(
            self.cell_dir(manifest.market, manifest.model) / manifest.file, manifest.sha256
        )
        if len(frame) != manifest.rows:
            raise CorruptReleaseError(
                f"release file {manifest.file} of {manifest.market}/{manifest.model} holds {len(frame)} "
                f"rows, the manifest says {manifest.rows}"
            )
        return frame

    def load_reference(self, manifest: ReleaseManifest) -> pd.DataFrame:
        """customer_id and probability of a release (Data Checker 2's comparison base), verified."""
        path = self.cell_dir(manifest.market, manifest.model) / manifest.reference_file
        return self._read_parquet(path, manifest.reference_sha256)
