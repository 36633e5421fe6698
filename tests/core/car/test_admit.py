"""Check, then open the gate: a delivered snapshot is staged, checked and only then part of `car.<market>`.

Issue 15's cases at the core: each ends in a verdict (stored per market, snapshot and content
hash) or a rejection naming the file, the column and a few rows, and nothing unchecked in the CAR.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest
from support.car_sample import month_ends, sample_car

from factory_assets.core.car import check_market
from factory_assets.core.car.admit import CheckSettings, admit_market, snapshot_verdict
from factory_assets.core.car.inputs import SnapshotInput
from factory_assets.core.car.source import read_car_file, scan_landing
from factory_assets.core.car.verdicts import admitted_verdict
from factory_assets.core.contract import load_contract
from factory_assets.core.names import Table
from factory_assets.core.warehouse import Warehouse

MONTHS = month_ends(dt.date(2024, 1, 1), 4)
CONTRACT = load_contract()


def item(frame: pd.DataFrame, day: dt.date, name: str = "") -> SnapshotInput:
    """A snapshot input whose content hash follows the frame's content."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()
    return SnapshotInput("uk", day, name or f"landing/uk/car_{day}.parquet", lambda: digest, frame.copy)


def month(day: dt.date, seed: int = 1, n: int = 200) -> pd.DataFrame:
    frame = sample_car(n, day, seed=seed)
    frame["extra_count"] = np.arange(n) % 7  # a feature outside the contract, stored as an integer
    return frame


def admit(warehouse: Warehouse, *inputs: SnapshotInput, accept: bool = False):
    settings = CheckSettings(customer_key="customer_id", accept_restatements=accept)
    return admit_market(warehouse, "uk", list(inputs), [], CONTRACT, "run", settings)


def held(warehouse: Warehouse) -> list[dt.date]:
    frame = warehouse.query("select distinct snapshot_date from car.uk order by 1")
    return [pd.Timestamp(d).date() for d in frame["snapshot_date"]]


@pytest.fixture
def built(warehouse: Warehouse) -> Warehouse:
    """Three good months admitted."""
    report = admit(warehouse, *(item(month(d, seed=i), d) for i, d in enumerate(MONTHS[:3])))
    assert [v.verdict for v in report.verdicts] != []
    assert all(v.admitted for v in report.verdicts)
    return warehouse


def test_every_snapshot_gets_its_own_verdict_and_only_admitted_ones_are_held(built):
    verdicts = built.query(f"select snapshot_date, verdict, admitted from {Table.CAR_VERDICTS} order by 1")
    assert list(verdicts["admitted"]) == [True, True, True]
    assert set(verdicts["verdict"]) <= {"pass", "warn"}
    assert held(built) == MONTHS[:3]
    assert snapshot_verdict(built, "uk", MONTHS[2]) in ("pass", "warn")


def test_new_numeric_column_in_the_latest_file_gets_a_verdict(built):
    """Case 1: a column new in the latest file (NULL before it) is checked, not a crash."""
    frame = month(MONTHS[3], seed=3)
    frame["brand_new_score"] = np.linspace(0, 1, len(frame))
    report = admit(built, item(frame, MONTHS[3]))
    (verdict,) = report.verdicts
    assert verdict.verdict in ("pass", "warn") and verdict.admitted, verdict
    assert held(built)[-1] == MONTHS[3]


def test_a_check_that_raises_blocks_leaves_nothing_and_is_rechecked(built, monkeypatch):
    """Case 1's root: a crashing check is a blocking verdict with the error; a rerun checks again."""

    def boom(*_args):
        raise ZeroDivisionError("simulated crash in a check")

    monkeypatch.setattr(check_market, "check_customer_overlap", boom)
    monkeypatch.setattr("factory_assets.core.car.checks.check_customer_overlap", boom)
    delivery = item(month(MONTHS[3], seed=3), MONTHS[3])
    report = admit(built, delivery)
    (verdict,) = report.verdicts
    assert verdict.verdict == "block"
    assert not verdict.admitted
    assert "ZeroDivisionError" in " ".join(verdict.reasons)
    assert report.gate.status == "failed"
    assert "customer_overlap" in report.gate.message
    assert held(built) == MONTHS[:3], "a blocked snapshot must not be stored"
    monkeypatch.undo()
    again = admit(built, delivery)
    assert [v.admitted for v in again.verdicts] == [True], "an unchanged file that was blocked is re-checked"
    assert held(built) == MONTHS


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda f: f.assign(ARPU=f["arpu"]), ["['arpu', 'ARPU']", "differ only in case"]),
        (lambda f: f.assign(**{"Unnamed: 17": np.nan}), ["'Unnamed: 17'", "no header"]),
        (
            lambda f: f.assign(arpu=f["arpu"].where(f.index > 2, np.inf)),
            ["column 'arpu'", "infinite", "c000000"],
        ),
        (
            lambda f: f.assign(extra_count=f["extra_count"] + 0.5),
            ["column 'extra_count'", "would change", "BIGINT", "c000000"],
        ),
    ],
    ids=["case_clash", "trailing_delimiter_column", "infinity", "fraction_into_integer"],
)
def test_values_that_cannot_be_stored_unchanged_are_rejected(built, damage, words):
    """Cases 2-5: rejected naming the file, the column and a few rows; the CAR keeps its months."""
    report = admit(built, item(damage(month(MONTHS[3], seed=3)), MONTHS[3]))
    (rejection,) = report.ingest.rejected
    for word in [*words, f"car_{MONTHS[3]}.parquet"]:
        assert word in rejection.reason, rejection.reason
    assert report.gate.status == "failed"
    assert "contract" in report.gate.message
    assert held(built) == MONTHS[:3]


def _restated(frame: pd.DataFrame) -> pd.DataFrame:
    half = frame.iloc[: len(frame) // 2].copy()
    half["customer_id"] = half["customer_id"].str.replace("c", "z", regex=False)
    half["arpu"] = half["arpu"] * 100
    return half


def test_restated_old_month_is_compared_with_the_version_it_replaces_and_blocks(built):
    """Case 6: half the rows, changed ids and a column x100 in an old month: blocked, nothing changes."""
    before = built.query("select * exclude (_run_id, _written_at) from car.uk order by all")
    report = admit(built, item(_restated(month(MONTHS[1], seed=1)), MONTHS[1]))
    (verdict,) = report.verdicts
    assert verdict.verdict == "block" and verdict.restatement == "blocked", verdict
    text = " ".join(verdict.reasons)
    assert "restatement" in text
    assert "rows 200 -> 100" in text
    assert "arpu" in text
    after = built.query("select * exclude (_run_id, _written_at) from car.uk order by all")
    pd.testing.assert_frame_equal(before, after)


def test_restated_latest_month_x100_blocks(built):
    """Case 7: the latest month re-delivered with a column x100 (PSI >> 1) blocks; the old version stays."""
    frame = month(MONTHS[2], seed=2)
    frame["viewing_hours"] = frame["viewing_hours"] * 100
    report = admit(built, item(frame, MONTHS[2]))
    (verdict,) = report.verdicts
    assert verdict.verdict == "block"
    assert "viewing_hours" in " ".join(verdict.reasons)
    assert not verdict.admitted


def test_accepted_restatement_is_admitted_and_recorded(built):
    """A deployment that accepts restatements for the market: admitted, recorded as accepted."""
    frame = month(MONTHS[1], seed=1)
    frame.loc[frame.index[:20], "customer_id"] = [f"n{i:06d}" for i in range(20)]  # 10% re-keyed
    report = admit(built, item(frame, MONTHS[1]), accept=True)
    (verdict,) = report.verdicts
    assert verdict.admitted and verdict.restatement == "accepted", verdict
    assert "accepted restatement(s) of" in report.gate.message
    stored = built.query(f"select restatement from {Table.CAR_VERDICTS} where admitted and restatement <> ''")
    assert list(stored["restatement"]) == ["accepted"]


def test_extreme_psi_on_a_new_month_warns_and_records_the_column_for_the_cells(built):
    """A feature x100 in a new month: admitted with a warning naming the column; the shift is recorded in
    the verdict, where the release gate of each cell whose champion reads the column finds it."""
    frame = month(MONTHS[3], seed=3)
    frame["viewing_hours"] = frame["viewing_hours"] * 100
    report = admit(built, item(frame, MONTHS[3]))
    (verdict,) = report.verdicts
    assert verdict.verdict == "warn" and verdict.admitted, verdict
    (reason,) = [r for r in verdict.reasons if r.startswith("extreme_psi")]
    assert f"extreme_psi (warning): extreme shift vs {MONTHS[2]}" in reason
    assert "viewing_hours (PSI" in reason
    assert held(built) == MONTHS
    stored = admitted_verdict(built, "uk", MONTHS[3])
    assert stored is not None and stored.verdict == "warn"
    assert list(stored.extreme.columns) == ["viewing_hours"]
    assert stored.extreme.columns["viewing_hours"] >= CheckSettings().thresholds.block_psi
    assert (stored.extreme.block_psi, stored.extreme.previous) == (3.0, str(MONTHS[2]))
    assert report.gate.status == "ok", "the market goes on: only cells reading the column are held"


def test_a_verdict_stored_before_extreme_shifts_were_kept_reads_as_none(built):
    built.execute(lambda con: con.execute(f"alter table {Table.CAR_VERDICTS} drop column extreme_psi"))
    stored = admitted_verdict(built, "uk", MONTHS[2])
    assert stored is not None and stored.extreme.columns == {}
    report = admit(built, item(month(MONTHS[3], seed=3), MONTHS[3]))
    assert report.verdicts[0].admitted, "the column is added back on the next write"
    assert admitted_verdict(built, "uk", MONTHS[2]).extreme.columns == {}


def test_semicolon_csv_gets_a_delimiter_hint(tmp_path):
    path = tmp_path / "car_2024-01-31.csv"
    sample_car(5, MONTHS[0]).to_csv(path, sep=";", index=False)
    with pytest.raises(ValueError, match="looks ';'-delimited"):
        read_car_file(path)


def test_timezone_shifted_dates_are_explained(warehouse):
    frame = month(MONTHS[0])
    frame["snapshot_date"] = f"{MONTHS[0] + dt.timedelta(days=1)}T00:00:00+02:00"
    report = admit(warehouse, item(frame, MONTHS[0] + dt.timedelta(days=1)))
    (rejection,) = report.ingest.rejected
    assert "UTC offset" in rejection.reason and "converted to UTC" in rejection.reason, rejection.reason


def test_a_dot_dot_market_folder_is_reported(tmp_path):
    (tmp_path / "..x").mkdir()
    (tmp_path / ".hidden").mkdir()
    problems = scan_landing(tmp_path, settle_seconds=0).problems
    assert [p.path.name for p in problems] == ["..x"]
    assert "not a valid partition key" in problems[0].reason


def test_a_hidden_folder_holding_car_files_is_reported_and_other_hidden_folders_are_not(tmp_path):
    # Issue 15: a market folder starting with '.' was ignored silently.
    (tmp_path / ".uk").mkdir()
    sample_car(5, MONTHS[0]).to_parquet(tmp_path / ".uk" / f"car_{MONTHS[0]}.parquet")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    problems = scan_landing(tmp_path, settle_seconds=0).problems
    assert [p.path.name for p in problems] == [".uk"]
    assert f"hidden folder '.uk' holds CAR file(s) (car_{MONTHS[0]}.parquet)" in problems[0].reason
    assert "rename it" in problems[0].reason


def test_a_latin1_csv_gets_an_encoding_hint(tmp_path):
    path = tmp_path / "car_2024-01-31.csv"
    frame = sample_car(5, MONTHS[0]).assign(region="München")
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    expected = r"not UTF-8 \(byte 0xfc at line 2, byte offset \d+: .*\): re-export it as UTF-8"
    with pytest.raises(ValueError, match=expected):
        read_car_file(path)


def test_a_utf16_csv_gets_an_encoding_hint(tmp_path):
    # Excel's "Unicode text" export: UTF-16 with a byte-order mark.
    path = tmp_path / "car_2024-01-31.csv"
    path.write_bytes(sample_car(5, MONTHS[0]).to_csv(index=False).encode("utf-16"))
    with pytest.raises(ValueError, match=r"not UTF-8 \(it starts with a UTF-16 byte-order mark\): re-export"):
        read_car_file(path)
