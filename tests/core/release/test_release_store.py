"""Release files and manifests: formats, content-derived ids, immutability, atomic manifest swaps."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factory_assets.core.release import reader as release_reader
from factory_assets.core.release import store as rs
from factory_assets.core.release.publish import output_columns, publish
from factory_assets.core.release.store import CorruptReleaseError, ReleaseStore, ReleaseStoreError
from factory_assets.core.specs import OutputSpec

SNAPSHOT = dt.date(2026, 10, 31)
NOW = dt.datetime(2026, 11, 2, 8, 30)


def scored(n: int = 50, seed: int = 0, version: str = "v1") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0.01, 0.4, n)
    rank = probability.argsort().argsort() + 1
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "snapshot_date": pd.Timestamp(SNAPSHOT),
            "probability": probability,
            "percentile": 100.0 * rank / n,
            "decile": 10 - (rank - 1) * 10 // n,
            "model_version": version,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "releases")


@pytest.mark.parametrize("fmt", ["probability", "percentile", "both"])
def test_publish_writes_the_columns_the_output_format_asks(store, fmt):
    scores = scored()
    manifest, created = publish(store, "uk", "churn", scores, OutputSpec(format=fmt), NOW)

    frame = store.load_release(manifest)
    assert created
    assert list(frame.columns) == output_columns(fmt)
    assert manifest.columns == output_columns(fmt)
    assert (manifest.rows, manifest.snapshot_date, manifest.model_version) == (50, "2026-10-31", "v1")
    assert set(frame["release_id"]) == {manifest.release_id}
    assert manifest.release_id.startswith("20261031-")
    merged = frame.merge(scores, on="customer_id", suffixes=("", "_in"))
    assert len(merged) == 50
    for column in ["probability", "percentile"] if fmt == "both" else [fmt]:
        assert np.allclose(merged[column], merged[f"{column}_in"])
    assert frame[output_columns(fmt)[2]].is_monotonic_decreasing, "best customers first"
    reference = store.load_reference(manifest)
    by_id = scores.set_index("customer_id")["probability"]
    assert np.allclose(reference.set_index("customer_id")["probability"], by_id.loc[reference["customer_id"]])


def test_csv_is_written_when_the_spec_asks_and_matches_the_parquet(store):
    manifest, _ = publish(store, "uk", "churn", scored(), OutputSpec(format="both", csv=True), NOW)
    folder = store.cell_dir("uk", "churn")
    csv = pd.read_csv(folder / manifest.csv_file, dtype={"customer_id": str})
    parquet = store.load_release(manifest)
    assert manifest.csv_sha256 == rs.sha256_bytes((folder / manifest.csv_file).read_bytes())
    assert list(csv["customer_id"]) == list(parquet["customer_id"])
    assert np.allclose(csv["probability"], parquet["probability"])


def test_csv_bytes_are_what_pandas_writes_for_awkward_values():
    frame = pd.DataFrame(
        {
            "customer_id": ["plain", "with,comma", 'with "quote"', "line\nbreak", "ünïcødé", " pad "],
            "snapshot_date": [SNAPSHOT] * 6,
            "probability": [0.1, 1 / 3, 1e-12, 0.999999999999, 0.0, 1.0],
            "percentile": [100.0, 50.5, 1e-05, 33.333333333333336, 1.0, 16.666666666666668],
            "decile": np.arange(1, 7, dtype="int64"),
        }
    )
    assert rs.csv_bytes(frame) == frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def test_same_scores_give_the_same_release_and_no_new_files(store):
    first, created = publish(store, "uk", "churn", scored(), OutputSpec(), NOW)
    files = sorted(p.name for p in store.cell_dir("uk", "churn").iterdir())
    again, created_again = publish(store, "uk", "churn", scored(), OutputSpec(), NOW + dt.timedelta(days=1))

    assert created
    assert not created_again
    assert again == first, "the manifest in force is untouched, released_at included"
    assert sorted(p.name for p in store.cell_dir("uk", "churn").iterdir()) == files
    other, _ = publish(store, "uk", "churn", scored(seed=1), OutputSpec(), NOW)
    assert other.release_id != first.release_id
    assert other.release_id != publish(store, "de", "churn", scored(seed=1), OutputSpec(), NOW)[0].release_id


def test_release_files_are_immutable(store):
    path = store.cell_dir("uk", "churn") / "x.parquet"
    store.write_immutable(path, b"one")
    assert store.write_immutable(path, b"one") == rs.sha256_bytes(b"one")
    with pytest.raises(ReleaseStoreError, match="immutable"):
        store.write_immutable(path, b"two")


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_release_file_is_reported_with_its_name(store, damage):
    manifest, _ = publish(store, "uk", "churn", scored(), OutputSpec(), NOW)
    path = store.cell_dir("uk", "churn") / manifest.file
    payload = bytearray(path.read_bytes())
    if damage == "flip":
        payload[len(payload) // 2] ^= 0xFF
        path.write_bytes(bytes(payload))
    elif damage == "truncate":
        path.write_bytes(bytes(payload[:100]))
    else:
        path.unlink()
    with pytest.raises(CorruptReleaseError, match=re.escape(manifest.file)):
        store.load_release(manifest)


def test_a_broken_manifest_is_reported_and_a_missing_one_means_never_released(store):
    assert store.read_manifest("uk", "churn") is None
    path = store.manifest_path("uk", "churn")
    path.parent.mkdir(parents=True)
    path.write_text('{"release_id": "x"', encoding="utf-8")
    with pytest.raises(CorruptReleaseError, match=r"current\.json"):
        store.read_manifest("uk", "churn")


def test_keys_that_could_leave_the_root_are_refused(store):
    with pytest.raises(ValueError, match="not a valid"):
        store.cell_dir("..", "churn")


def test_a_manifest_naming_a_missing_file_is_refused(store):
    manifest, _ = publish(store, "uk", "churn", scored(), OutputSpec(), NOW)
    bogus = rs.ReleaseManifest(**{**manifest.__dict__, "release_id": "r2", "file": "missing.parquet"})
    with pytest.raises(ReleaseStoreError, match="missing file"):
        store.swap_manifest(bogus)
    assert store.read_manifest("uk", "churn") == manifest


def test_a_crash_during_the_manifest_swap_leaves_the_previous_release_in_force(store, monkeypatch):
    first, _ = publish(store, "uk", "churn", scored(seed=1), OutputSpec(), NOW)

    real_replace = os.replace

    def crash(src, dst):
        if Path(dst).name == "current.json":
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(rs.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        publish(store, "uk", "churn", scored(seed=2), OutputSpec(), NOW)
    monkeypatch.undo()

    assert store.read_manifest("uk", "churn") == first
    folder = store.cell_dir("uk", "churn")
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert len(list(folder.glob("*.reference.parquet"))) == 2, "new files written, then the swap failed"
    assert len(store.load_release(first)) == 50


def test_a_reader_never_sees_a_half_written_release(store):
    publish(store, "uk", "churn", scored(seed=0), OutputSpec(), NOW)
    errors: list[str] = []
    reads = 0
    done = threading.Event()

    def read_continuously() -> None:
        nonlocal reads
        while not done.is_set():
            raw = store.manifest_path("uk", "churn").read_text(encoding="utf-8")
            try:
                manifest = rs.ReleaseManifest(**json.loads(raw))
                frame = store.load_release(manifest)
                assert set(frame["release_id"]) == {manifest.release_id}
            except Exception as exc:  # collected and asserted on below, in the main thread
                errors.append(f"{type(exc).__name__}: {exc}")
            reads += 1

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for seed in range(1, 25):
            publish(store, "uk", "churn", scored(seed=seed), OutputSpec(), NOW)
    finally:
        done.set()
        reader.join(timeout=30)
    assert reads > 0
    assert errors == []


def test_cells_lists_every_released_cell(store):
    publish(store, "uk", "churn", scored(), OutputSpec(), NOW)
    publish(store, "de", "addon_kids", scored(), OutputSpec(), NOW)
    (store.root / "uk" / "not_a_cell").mkdir(parents=True)
    assert store.cells() == [("de", "addon_kids"), ("uk", "churn")]


def test_write_atomic_fsyncs_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(rs.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    rs.write_atomic(tmp_path / "a" / "m.json", b"{}")
    assert (tmp_path / "a" / "m.json").read_bytes() == b"{}"
    assert len(synced) == 2, "the file and its directory"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["m.json"]


def test_disk_full_while_publishing_names_the_file_and_keeps_the_release_in_force(store, monkeypatch):
    # Issue 15: `OSError: [Errno 28]` with no path. Simulated where the store writes every file.
    first, _ = publish(store, "uk", "churn", scored(seed=1), OutputSpec(), NOW)

    def full(path: Path, payload: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rs, "write_atomic", full)
    folder = re.escape(str(store.cell_dir("uk", "churn")))
    expected = rf"cannot write {folder}/\S+\.parquet: No space left on device \[ENOSPC\] \(the disk is full"
    with pytest.raises(rs.WriteFailedError, match=expected):
        publish(store, "uk", "churn", scored(seed=2), OutputSpec(), NOW)
    monkeypatch.undo()

    assert store.read_manifest("uk", "churn") == first
    assert len(store.load_release(first)) == 50


def test_write_atomic_names_the_file_when_the_disk_fills_and_leaves_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "a" / "m.json"
    rs.write_atomic(target, b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rs.os, "fsync", full)
    with pytest.raises(OSError, match=rf"cannot write {re.escape(str(target))}: .*\[ENOSPC\]") as raised:
        rs.write_atomic(target, b"new")
    assert raised.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]


def test_reason_codes_are_published_last_and_read_back_per_customer(store):
    # given scores with two reason slots as scoring writes them, and a third slot no customer fills
    # (scores.scores holds the columns another cell's larger top_n added)
    scores = scored(n=4).assign(
        reason_1_feature=pd.array(["arpu", "age", "arpu", None], dtype="string"),
        reason_1_value=pd.array(["31.5", None, "12", None], dtype="string"),
        reason_1_contribution=[0.8, -0.4, 0.3, np.nan],
        reason_2_feature=pd.array(["age", None, None, None], dtype="string"),
        reason_2_value=pd.array(["40", None, None, None], dtype="string"),
        reason_2_contribution=[-0.1, np.nan, np.nan, np.nan],
        reason_3_feature=pd.array([None] * 4, dtype="string"),
        reason_3_value=pd.array([None] * 4, dtype="string"),
        reason_3_contribution=np.nan,
    )

    # when they are published with a CSV
    manifest, _ = publish(store, "uk", "churn", scores, OutputSpec(format="both", csv=True), NOW)

    # then the two filled slots follow the release id in both files; the empty slot is left out
    slots = [f"reason_{k}_{kind}" for k in (1, 2) for kind in ("feature", "value", "contribution")]
    assert manifest.columns == [*output_columns("both"), *slots]
    frame = store.load_release(manifest)
    csv = pd.read_csv(store.cell_dir("uk", "churn") / manifest.csv_file)
    assert list(csv.columns) == manifest.columns
    assert csv.set_index("customer_id").loc["c0000", "reason_1_value"] == 31.5
    # and the reader gives each customer its reasons, best first, a missing value left out
    release = release_reader.load_release(store, manifest)
    assert release.lookup("c0000")["reasons"] == [
        {"feature": "arpu", "value": "31.5", "contribution": 0.8},
        {"feature": "age", "value": "40", "contribution": -0.1},
    ]
    assert release.lookup("c0001")["reasons"] == [{"feature": "age", "contribution": -0.4}]
    assert release.lookup("c0003")["reasons"] == [], "a customer without reasons says so"
    assert len(frame) == 4


def test_a_release_without_reason_codes_gives_no_reasons(store):
    manifest, _ = publish(store, "uk", "churn", scored(n=4), OutputSpec(format="both"), NOW)

    release = release_reader.load_release(store, manifest)
    assert "reasons" not in release.lookup("c0000")
    assert release.reasons == ()
