"""CAR sources: listing the landing folder, reading files, and an external CAR mapped by config."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.car_sample import sample_car

from factory_assets.core.car.external import (
    ExternalCarSource,
    ExternalMappingError,
    load_external_mapping,
)
from factory_assets.core.car.source import CarReadError, LandingFolder, read_car_file, scan_landing
from factory_assets.core.contract import load_contract, validate_car
from factory_assets.core.paths import REPO_ROOT

JAN, FEB = dt.date(2024, 1, 31), dt.date(2024, 2, 29)
EXAMPLE_MAPPING = REPO_ROOT / "config" / "external_car_example.yaml"


def land(path: Path, frame: pd.DataFrame | None = None, age: float = 60.0) -> Path:
    """Write a CAR file (parquet or csv by suffix, or raw bytes if no frame) and age its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if frame is None:
        path.write_bytes(b"not a CAR file")
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    else:
        frame.to_parquet(path)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_scan_lists_valid_files_by_market_and_date(tmp_path):
    land(tmp_path / "uk" / f"car_{FEB}.parquet", sample_car(5, FEB))
    land(tmp_path / "uk" / f"car_{JAN}.csv", sample_car(5, JAN))
    land(tmp_path / "de" / f"car_{JAN}.parquet", sample_car(5, JAN))

    scan = scan_landing(tmp_path, settle_seconds=2)

    assert scan.problems == ()
    assert scan.markets() == ["de", "uk"]
    assert [(f.snapshot_date, f.fmt) for f in scan.files_for("uk")] == [(JAN, "csv"), (FEB, "parquet")]
    assert scan.files_for("uk")[0].name == f"uk/car_{JAN}.csv"


def test_scan_ignores_partial_hidden_and_unsettled_files(tmp_path):
    land(tmp_path / "uk" / f"car_{JAN}.parquet.part")
    land(tmp_path / "uk" / f"car_{JAN}.parquet.tmp")
    land(tmp_path / "uk" / f".car_{JAN}.parquet")
    land(tmp_path / ".demo_config.json")
    fresh = land(tmp_path / "uk" / f"car_{FEB}.parquet", sample_car(5, FEB), age=0)

    scan = scan_landing(tmp_path, settle_seconds=30)

    assert scan.files == ()
    assert scan.problems == ()
    assert scan.pending == (fresh,), "a file modified within settle_seconds is a copy in progress"
    assert [f.path for f in scan_landing(tmp_path, settle_seconds=0, now=time.time() + 1).files] == [fresh]


def test_scan_reports_each_problem_by_file_without_raising(tmp_path):
    land(tmp_path / "uk" / f"car_{JAN}.parquet", sample_car(5, JAN))
    land(tmp_path / "uk" / "readme.txt")
    land(tmp_path / "uk" / "car_2024-13-01.parquet")
    land(tmp_path / "DE-x" / f"car_{JAN}.parquet", sample_car(5, JAN))
    land(tmp_path / "stray.csv")
    land(tmp_path / "it" / f"car_{JAN}.parquet", sample_car(5, JAN))
    land(tmp_path / "it" / f"car_{JAN}.csv", sample_car(5, JAN))

    scan = scan_landing(tmp_path, settle_seconds=0)
    reasons = {p.path.relative_to(tmp_path).as_posix(): p.reason for p in scan.problems}

    assert [f.name for f in scan.files] == [f"uk/car_{JAN}.parquet"], "only the good file is kept"
    assert "does not match car_<YYYY-MM-DD>" in reasons["uk/readme.txt"]
    assert "'2024-13-01' in the file name is not a valid date" in reasons["uk/car_2024-13-01.parquet"]
    assert "market folder 'DE-x' is not a valid partition key" in reasons["DE-x"]
    assert "outside a market folder" in reasons["stray.csv"]
    assert "two files for snapshot 2024-01-31" in reasons[f"it/car_{JAN}.csv"]
    assert "two files for snapshot 2024-01-31" in reasons[f"it/car_{JAN}.parquet"]
    assert {p.path.name for p in scan.problems_for("it")} == {f"car_{JAN}.csv", f"car_{JAN}.parquet"}


def test_missing_landing_folder_is_an_empty_scan(tmp_path):
    assert scan_landing(tmp_path / "absent").files == ()


def test_read_parquet_and_csv_keep_values_and_leading_zeros(tmp_path):
    frame = sample_car(4, JAN)
    frame["customer_id"] = ["007", "010", "100", "000"]
    parquet = land(tmp_path / "uk" / f"car_{JAN}.parquet", frame)
    csv = land(tmp_path / "uk" / f"car_{FEB}.csv", frame)

    from_parquet, from_csv = read_car_file(parquet), read_car_file(csv)

    assert from_parquet["customer_id"].tolist() == ["007", "010", "100", "000"]
    assert from_csv["customer_id"].tolist() == ["007", "010", "100", "000"], "ids are text in a CSV"
    assert from_csv["arpu"].tolist() == frame["arpu"].tolist()
    folder = LandingFolder(tmp_path, settle_seconds=0)
    assert len(folder.read(folder.scan().files_for("uk")[0])) == 4


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("car_2024-01-31.parquet", b"PAR1 garbage that is no parquet"),
        ("car_2024-01-31.parquet", b""),
        ("car_2024-01-31.csv", b""),
        ("car_2024-01-31.csv", "customer_id,region\nc1,m\xfcnchen\n".encode("latin-1")),
    ],
    ids=["corrupt-parquet", "empty-parquet", "empty-csv", "latin1-csv"],
)
def test_unreadable_file_raises_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(CarReadError, match=r"car_2024-01-31\.(parquet|csv): cannot read the file") as info:
        read_car_file(path)
    assert str(path) in str(info.value)


def odd_export(path: Path) -> Path:
    """A CSV as another system would export it: ';'-separated, own names, 202401 dates, countries."""
    rows = []
    for country, month, first in (("GB", "202401", 0), ("GB", "202402", 0), ("DE", "202401", 100)):
        frame = sample_car(3, JAN, seed=first, first_id=first)
        for i, row in frame.iterrows():
            rows.append(
                {
                    "cust_no": f"00{first + i}",
                    "country": f" {country} ",
                    "month": month,
                    "tenure": row.tenure_months,
                    "yrs": row.age,
                    "area": row.region,
                    "tier": row.base_tier,
                    "sports": row.addon_sports,
                    "movies": row.addon_movies,
                    "kids": row.addon_kids,
                    "hours": row.viewing_hours,
                    "logins": row.sessions,
                    "devices": row.devices,
                    "monthly_fee": row.arpu,
                    "late": row.late_payments,
                    "calls": row.support_calls,
                    "contacts": row.campaign_contacts,
                    "has_music": i % 2,
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, sep=";", index=False, encoding="utf-8")
    return path


def example_mapping(tmp_path: Path, **changes: object) -> Path:
    """The shipped example mapping, pointed at a temporary export (plus any field changes)."""
    raw = yaml.safe_load(EXAMPLE_MAPPING.read_text(encoding="utf-8"))
    raw.update({"path": "export/car_export.csv", **changes})
    target = tmp_path / "mapping.yaml"
    target.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return target


def test_external_csv_is_mapped_onto_the_contract(tmp_path):
    odd_export(tmp_path / "export" / "car_export.csv")
    source = ExternalCarSource(load_external_mapping(example_mapping(tmp_path)))

    assert source.snapshots() == [
        ("de", dt.date(2024, 1, 1)),
        ("uk", dt.date(2024, 1, 1)),
        ("uk", dt.date(2024, 2, 1)),
    ]
    frame = source.read("uk", dt.date(2024, 2, 1))
    validated = validate_car(frame, load_contract(), source.source_name("uk", dt.date(2024, 2, 1)))

    assert frame["customer_id"].tolist() == ["000", "001", "002"], "ids stay text with leading zeros"
    assert set(validated["snapshot_date"].dt.date) == {dt.date(2024, 2, 1)}
    assert "has_music" in frame.columns
    assert "country" not in frame.columns
    assert "month" not in frame.columns
    assert source.markets() == ["de", "uk"]
    assert len(source.content_hash()) == 64
    assert len(source.stat_fingerprint()) == 64


def test_external_date_not_matching_the_format_names_the_column(tmp_path):
    odd_export(tmp_path / "export" / "car_export.csv")
    source = ExternalCarSource(load_external_mapping(example_mapping(tmp_path, date_format="%Y-%m")))

    with pytest.raises(
        CarReadError, match=r"column 'month' values \['2024\d\d'.*do not match date_format '%Y-%m'"
    ):
        source.snapshots()


def test_external_missing_product_column_is_named(tmp_path):
    odd_export(tmp_path / "export" / "car_export.csv")
    mapping = example_mapping(tmp_path, product_columns=["has_music", "has_gaming"])
    source = ExternalCarSource(load_external_mapping(mapping))

    with pytest.raises(CarReadError, match=r"product columns \['has_gaming'\] not found"):
        source.read("uk", dt.date(2024, 1, 1))


def test_bad_mapping_names_the_file_and_field(tmp_path):
    mapping = example_mapping(tmp_path, market="uk")

    with pytest.raises(
        ExternalMappingError, match=r"mapping\.yaml: .*exactly one of 'market_column' and 'market'"
    ):
        load_external_mapping(mapping)
    with pytest.raises(ExternalMappingError, match=r"field 'date_column': Field required"):
        load_external_mapping(_without(tmp_path))


def _without(tmp_path: Path) -> Path:
    raw = yaml.safe_load(EXAMPLE_MAPPING.read_text(encoding="utf-8"))
    del raw["date_column"]
    target = tmp_path / "no_date.yaml"
    target.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return target


def test_missing_external_source_is_a_read_error(tmp_path):
    source = ExternalCarSource(load_external_mapping(example_mapping(tmp_path)))
    with pytest.raises(CarReadError, match=r"car_export\.csv: no csv file found"):
        source.snapshots()
