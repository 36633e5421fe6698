"""A lost `.reference.parquet` is rebuilt by `restore_reference` (CLI `restore-reference`), after which
the next release can be gated again; the release file consumers get is never touched."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from factory_assets import cli
from factory_assets.core.names import Table
from factory_assets.core.release.publish import publish
from factory_assets.core.release.recovery import ReferenceRecoveryError, reference_intact, restore_reference
from factory_assets.core.release.store import CorruptReleaseError, ReleaseStore
from factory_assets.core.specs import OutputSpec
from factory_assets.core.warehouse import Warehouse

NOW = dt.datetime(2026, 3, 2, 6)
SNAPSHOT = dt.date(2026, 2, 1)


def scores(n: int = 80, seed: int = 4) -> pd.DataFrame:
    probability = np.random.default_rng(seed).uniform(0.01, 0.6, n)
    rank = probability.argsort().argsort() + 1
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "snapshot_date": pd.Timestamp(SNAPSHOT),
            "probability": probability,
            "percentile": 100.0 * rank / n,
            "decile": 10 - (rank - 1) * 10 // n,
            "model_version": "v-abc",
        }
    )


def history(path: Path, frame: pd.DataFrame) -> Warehouse:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema scores")
        rows = frame.assign(market="uk", model="churn", snapshot_date=SNAPSHOT)  # noqa: F841 (read by SQL)
        con.execute(f"create table {Table.SCORE_HISTORY} as select * from rows")
    return Warehouse(path)


@pytest.mark.parametrize("output_format", ["both", "probability", "percentile"])
def test_a_lost_reference_is_restored_byte_identical(tmp_path, output_format):
    store = ReleaseStore(tmp_path / "releases")
    frame = scores()
    manifest, _ = publish(store, "uk", "churn", frame, OutputSpec(format=output_format), NOW)
    reference = store.cell_dir("uk", "churn") / manifest.reference_file
    original, release_bytes = reference.read_bytes(), (reference.parent / manifest.file).read_bytes()
    reference.unlink()
    with pytest.raises(CorruptReleaseError, match="missing"):
        store.load_reference(manifest)

    outcome = restore_reference(store, history(tmp_path / "w.duckdb", frame), "uk", "churn")

    assert "byte-identical" in outcome, outcome
    assert reference.read_bytes() == original
    assert reference_intact(store, manifest)
    assert store.read_manifest("uk", "churn") == manifest, "the manifest did not need to change"
    assert (reference.parent / manifest.file).read_bytes() == release_bytes, "the release file is untouched"
    assert "intact" in restore_reference(store, Warehouse(tmp_path / "w.duckdb"), "uk", "churn")


def test_a_damaged_reference_of_a_percentile_release_without_history_is_refused_with_the_way_out(tmp_path):
    store = ReleaseStore(tmp_path / "releases")
    manifest, _ = publish(store, "uk", "churn", scores(), OutputSpec(format="percentile"), NOW)
    reference = store.cell_dir("uk", "churn") / manifest.reference_file
    reference.write_bytes(b"garbage")
    with pytest.raises(ReferenceRecoveryError, match="withdraw-release"):
        restore_reference(store, Warehouse(tmp_path / "empty.duckdb"), "uk", "churn")
    with pytest.raises(ReferenceRecoveryError, match="no release in force"):
        restore_reference(store, Warehouse(tmp_path / "empty.duckdb"), "de", "churn")


def test_the_cli_command_restores_the_reference_of_the_deployment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACTORY_DATA_DIR", str(tmp_path / "data"))
    store = ReleaseStore(tmp_path / "data" / "releases")
    manifest, _ = publish(store, "uk", "churn", scores(), OutputSpec(format="both"), NOW)
    (store.cell_dir("uk", "churn") / manifest.reference_file).unlink()

    cli.main(["restore-reference", "--market", "uk", "--model", "churn"])

    assert "restored" in capsys.readouterr().out
    assert reference_intact(store, manifest)
