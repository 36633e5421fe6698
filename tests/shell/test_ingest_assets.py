"""`car_snapshots` and Data Checker 1 materialised in process against a temporary warehouse."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from support.car_sample import month_ends, sample_car

from factory_assets import ingest
from factory_assets.core import cell_status
from factory_assets.core.car import checks as car_checks
from factory_assets.core.car.ingest import SnapshotInput, collect_inputs, ingest_market
from factory_assets.core.cell_status import MARKET_WIDE
from factory_assets.core.contract import load_contract
from resources.landing import LandingResource

MONTHS = month_ends(dt.date(2024, 1, 1), 3)
CUSTOMERS = 120


def land(landing: Path, market: str, day: dt.date, frame: pd.DataFrame | bytes, fmt: str = "parquet") -> Path:
    """Write a settled CAR file (its mtime a minute ago, as if copied earlier)."""
    path = landing / market / f"car_{day}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(frame, bytes):
        path.write_bytes(frame)
    elif fmt == "csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    else:
        frame.to_parquet(path)
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))
    return path


def land_good_market(landing: Path, market: str) -> None:
    for day in MONTHS:
        land(landing, market, day, sample_car(CUSTOMERS, day, seed=1))


def materialize(instance, resources, market: str, **kwargs) -> dg.ExecuteInProcessResult:
    if market not in instance.get_dynamic_partitions("markets"):
        instance.add_dynamic_partitions("markets", [market])
    return dg.materialize(
        [*ingest.ASSETS, *ingest.CHECKS],
        partition_key=market,
        instance=instance,
        resources=resources,
        **kwargs,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    event = result.asset_materializations_for_node("car_snapshots")[0]
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def car_rows(warehouse, market: str) -> pd.DataFrame:
    return warehouse.query(f"select * from car.{market} order by snapshot_date, customer_id")


def test_ingest_job_loads_a_new_market_and_every_check_passes(paths, warehouse, resources, instance):
    land_good_market(paths.landing, "uk")
    instance.add_dynamic_partitions("markets", ["uk"])
    defs = dg.Definitions(
        assets=ingest.ASSETS, asset_checks=ingest.CHECKS, jobs=ingest.JOBS, resources=resources
    )

    result = defs.resolve_job_def("car_ingest_job").execute_in_process(partition_key="uk", instance=instance)

    assert result.success
    checks = evaluations(result)
    assert set(checks) == set(car_checks.CHECKS), "the job runs every Data Checker 1 check"
    assert all(e.passed for e in checks.values())
    assert {n for n, e in checks.items() if e.severity == dg.AssetCheckSeverity.ERROR} == {
        n for n, s in car_checks.CHECKS.items() if s == "blocking"
    }
    meta = metadata(result)
    assert meta["snapshots_held"] == 3
    assert meta["rows"] == 3 * CUSTOMERS
    assert meta["customers_latest"] == CUSTOMERS
    assert meta["files_rejected"] == 0
    assert meta["new_snapshot_dates"] == [str(d) for d in MONTHS]
    assert meta["data_checker_1"] == "ok"
    stored = car_rows(warehouse, "uk")
    assert len(stored) == 3 * CUSTOMERS
    assert stored["_source_file"].iloc[0].endswith(f"uk/car_{MONTHS[0]}.parquet")
    assert (
        str(warehouse.query("describe car.uk").set_index("column_name").loc["snapshot_date", "column_type"])
        == "DATE"
    )
    assert cell_status.latest(warehouse, "uk", MARKET_WIDE, "data_checker_1").status == "ok"


def test_reingest_is_idempotent_and_a_changed_file_is_replaced(paths, warehouse, resources, instance):
    land_good_market(paths.landing, "uk")
    materialize(instance, resources, "uk")
    before = car_rows(warehouse, "uk")

    again = materialize(instance, resources, "uk")

    assert metadata(again)["snapshots_ingested"] == 0
    assert metadata(again)["snapshots_unchanged"] == 3
    pd.testing.assert_frame_equal(car_rows(warehouse, "uk"), before)

    changed = sample_car(CUSTOMERS, MONTHS[1], seed=1)
    changed["arpu"] = changed["arpu"] + 1.0
    land(paths.landing, "uk", MONTHS[1], changed)
    third = materialize(instance, resources, "uk")

    assert metadata(third)["new_snapshot_dates"] == [str(MONTHS[1])]
    after = car_rows(warehouse, "uk")
    assert len(after) == len(before)
    feb = after["snapshot_date"] == pd.Timestamp(MONTHS[1])
    assert (after.loc[feb, "arpu"].to_numpy() == before.loc[feb, "arpu"].to_numpy() + 1.0).all()
    assert set(after.loc[feb, "_run_id"]) == {third.run_id}
    assert set(after.loc[~feb, "_run_id"]) == set(before.loc[~feb, "_run_id"])


def _missing_column(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["arpu"])


def _wrong_type(frame: pd.DataFrame) -> pd.DataFrame:
    frame["sessions"] = frame["sessions"].astype(str)
    frame.loc[:2, "sessions"] = "unknown"
    return frame


def _duplicate_keys(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.head(3)], ignore_index=True)


def _empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.head(0)


BAD_INPUTS = {
    "missing_column": (_missing_column, "parquet", r"required column\(s\) missing: arpu"),
    "wrong_type": (_wrong_type, "parquet", r"column 'sessions' fails 'coerce_dtype\('Int64'\)'"),
    "duplicate_keys": (
        _duplicate_keys,
        "parquet",
        r"column 'customer_id' fails 'multiple_fields_uniqueness'",
    ),
    "empty_file": (_empty, "csv", r"the CAR file holds no rows"),
    "unreadable_file": (b"PAR1 this is not parquet", "parquet", r"cannot read the file as parquet"),
}


@pytest.mark.parametrize("fault", list(BAD_INPUTS))
def test_bad_file_is_rejected_and_the_previous_data_stays(paths, warehouse, resources, instance, fault):
    land_good_market(paths.landing, "uk")
    contract = load_contract()
    inputs, _ = collect_inputs(
        LandingResource(landing_dir=str(paths.landing)).folder(), [], "uk", "customer_id"
    )
    ingest_market(warehouse, "uk", inputs, contract, "good-run")
    before = car_rows(warehouse, "uk")
    make, fmt, rule = BAD_INPUTS[fault]
    content = make if isinstance(make, bytes) else make(sample_car(CUSTOMERS, MONTHS[2], seed=2))
    (paths.landing / "uk" / f"car_{MONTHS[2]}.parquet").unlink()
    bad = land(paths.landing, "uk", MONTHS[2], content, fmt)

    result = materialize(instance, resources, "uk", raise_on_error=False)

    assert not result.success, "a failed blocking check fails the run"
    contract_check = evaluations(result)["contract"]
    assert not contract_check.passed
    summary = contract_check.metadata["summary"].value
    assert str(bad) in summary
    assert pd.Series([summary]).str.contains(rule).all(), summary
    assert "rejected_files" in contract_check.metadata
    pd.testing.assert_frame_equal(car_rows(warehouse, "uk"), before)
    gate = cell_status.latest(warehouse, "uk", MARKET_WIDE, "data_checker_1")
    assert gate.status == "failed"
    assert gate.message.startswith("blocking checks failed: contract")
    assert metadata(result)["files_rejected"] == 1


def test_snapshot_in_the_future_is_rejected(paths, warehouse, resources, instance):
    land_good_market(paths.landing, "uk")
    future = dt.date.today() + dt.timedelta(days=400)
    land(paths.landing, "uk", future, sample_car(CUSTOMERS, future, seed=1))

    result = materialize(instance, resources, "uk", raise_on_error=False)

    contract_check = evaluations(result)["contract"]
    assert not contract_check.passed
    assert f"column 'snapshot_date' fails 'snapshot_date after {dt.date.today()}'" in (
        contract_check.metadata["summary"].value
    )
    assert warehouse.query("select max(snapshot_date) from car.uk").iloc[0, 0].date() == MONTHS[-1]


def test_only_the_market_with_the_bad_file_fails(paths, warehouses, resources, instance):
    land_good_market(paths.landing, "uk")
    land_good_market(paths.landing, "de")
    land(paths.landing, "uk", month_ends(MONTHS[-1], 2)[1], b"")

    bad, good = (materialize(instance, resources, m, raise_on_error=False) for m in ("uk", "de"))

    assert not bad.success
    assert good.success
    warehouse = warehouses.union()
    assert warehouses.markets() == ["de", "uk"], "each market writes its own warehouse file"
    assert cell_status.latest(warehouse, "de", MARKET_WIDE, "data_checker_1").status == "ok"
    assert cell_status.latest(warehouse, "uk", MARKET_WIDE, "data_checker_1").status == "failed"
    assert len(car_rows(warehouse, "uk")) == len(car_rows(warehouse, "de")) == 3 * CUSTOMERS


def test_a_market_without_files_fails_loudly(paths, resources, instance):
    with pytest.raises(dg.Failure, match=r"market 'it': no settled CAR file in .*landing/it"):
        materialize(instance, resources, "it")


def test_external_car_is_ingested_through_the_mapping(paths, warehouse, resources, instance):
    export = paths.data_dir / "external" / "export.csv"
    export.parent.mkdir(parents=True)
    frames = [sample_car(30, day, seed=1) for day in MONTHS[:2]]
    raw = pd.concat(frames).rename(columns={"customer_id": "cust", "region": "area"})
    raw["month"] = raw["snapshot_date"].dt.strftime("%Y%m")
    raw["land"] = "GB"
    raw.drop(columns=["snapshot_date"]).to_csv(export, index=False, encoding="utf-8")
    mapping = paths.data_dir / "mapping.yaml"
    spec = {
        "path": str(export),
        "format": "csv",
        "renames": {"cust": "customer_id", "area": "region"},
        "date_column": "month",
        "date_format": "%Y%m",
        "market_column": "land",
        "market_codes": {"GB": "uk"},
    }
    mapping.write_text(yaml.safe_dump(spec), encoding="utf-8")
    landing = LandingResource(landing_dir=str(paths.landing), external_mapping_paths=[str(mapping)])

    result = materialize(instance, {**resources, "landing": landing}, "uk")

    assert result.success
    held = warehouse.query("select snapshot_date, count(*) as n from car.uk group by 1 order by 1")
    assert [d.date() for d in held["snapshot_date"]] == [dt.date(2024, 1, 1), dt.date(2024, 2, 1)]
    assert held["n"].tolist() == [30, 30]
    source = warehouse.query("select distinct _source_file from car.uk order by 1")["_source_file"].tolist()
    assert source == [f"{export}#market=uk&snapshot=2024-01-01", f"{export}#market=uk&snapshot=2024-02-01"]


def test_demo_generator_output_passes_and_its_category_fault_blocks(paths, warehouse, resources, instance):
    from factory_assets.demo.car import DemoConfig, write_landing
    from factory_assets.demo.faults import write_faulty_file

    config = DemoConfig(markets={"it": 300}, months=3, seed=11)
    written = write_landing(config, paths.landing)
    for path in written:
        os.utime(path, (time.time() - 60, time.time() - 60))

    first = materialize(instance, resources, "it", raise_on_error=False)

    failed = {n: e.metadata["summary"].value for n, e in evaluations(first).items() if not e.passed}
    assert first.success and not {n for n in failed if car_checks.CHECKS[n] == "blocking"}, failed
    last = max(pd.Timestamp(p.stem.removeprefix("car_")).date() for p in written)
    next_month = (pd.Timestamp(last) + pd.DateOffset(months=1)).date()
    fault = write_faulty_file("category_explosion", paths.landing, "it", next_month, seed=5)
    os.utime(fault, (time.time() - 60, time.time() - 60))

    second = materialize(instance, resources, "it", raise_on_error=False)

    assert not second.success
    assert not evaluations(second)["category_explosion"].passed
    assert "region" in evaluations(second)["category_explosion"].metadata["summary"].value


def _inputs(frames: dict[dt.date, pd.DataFrame], tag: str = "v1") -> list[SnapshotInput]:
    return [
        SnapshotInput("uk", day, f"uk/car_{day}.parquet", lambda t=tag, d=day: f"{t}:{d}", lambda f=frame: f)
        for day, frame in frames.items()
    ]


def test_a_column_whose_type_changes_rejects_the_snapshot_naming_the_column(warehouse):
    first, second = sample_car(5, MONTHS[0]), sample_car(5, MONTHS[1])
    first["channel"], second["channel"] = 1, "web"

    report = ingest_market(
        warehouse, "uk", _inputs({MONTHS[0]: first, MONTHS[1]: second}), load_contract(), "r"
    )

    assert list(report.ingested) == [MONTHS[0]]
    assert report.rejected[0].reason.startswith(f"uk/car_{MONTHS[1]}.parquet: a column's values do not fit")
    assert "source column channel" in report.rejected[0].reason


def test_rows_of_another_date_than_the_file_are_rejected(warehouse):
    frame = sample_car(5, MONTHS[1])

    report = ingest_market(warehouse, "uk", _inputs({MONTHS[0]: frame}), load_contract(), "r")

    assert not report.ingested
    assert report.rejected[0].reason == (
        f"uk/car_{MONTHS[0]}.parquet: column 'snapshot_date' holds {MONTHS[1]} but the file is for "
        f"snapshot {MONTHS[0]}"
    )


def test_unchanged_files_are_skipped_until_the_contract_changes(warehouse):
    contract = load_contract()
    frames = {MONTHS[0]: sample_car(5, MONTHS[0])}
    ingest_market(warehouse, "uk", _inputs(frames), contract, "r1")

    unchanged = ingest_market(warehouse, "uk", _inputs(frames), contract, "r2")
    stricter = contract.model_copy(
        update={
            "columns": {**contract.columns, "arpu": contract.columns["arpu"].model_copy(update={"max": 1.0})}
        }
    )
    revalidated = ingest_market(warehouse, "uk", _inputs(frames), stricter, "r3")

    assert unchanged.unchanged == [MONTHS[0]]
    assert not unchanged.ingested
    assert "column 'arpu' fails 'less_than_or_equal_to(1.0)'" in revalidated.rejected[0].reason
    assert len(warehouse.query("select * from car.uk")) == 5, "the rejected version does not replace the data"
    ledger = warehouse.query("select status, _run_id from ops.car_files where market = 'uk'")
    assert ledger.to_dict("records") == [{"status": "rejected", "_run_id": "r3"}]


def test_thresholds_are_run_configuration(paths, warehouse, resources, instance):
    for day in MONTHS:
        land(paths.landing, "uk", day, sample_car(CUSTOMERS if day != MONTHS[-1] else 90, day, seed=1))
    config = {"ops": {"car_snapshots": {"config": {"check_thresholds": {"min_volume_ratio": 0.5}}}}}
    strict = {"ops": {"car_snapshots": {"config": {"check_thresholds": {"min_volume_ratio": 0.9}}}}}

    assert materialize(instance, resources, "uk", run_config=config).success
    failed = materialize(instance, resources, "uk", run_config=strict, raise_on_error=False)

    assert not failed.success
    assert not evaluations(failed)["volume"].passed
    assert evaluations(failed)["volume"].metadata["threshold"].value == 0.9


def test_problem_files_of_the_market_and_clashes_with_the_external_car_are_rejections(paths):
    land(paths.landing, "uk", MONTHS[0], sample_car(5, MONTHS[0]))
    land(paths.landing, "uk", MONTHS[1], sample_car(5, MONTHS[1]))
    land(paths.landing, "uk", MONTHS[1], sample_car(5, MONTHS[1]), fmt="csv")
    notes = paths.landing / "uk" / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    os.utime(notes, (time.time() - 60, time.time() - 60))
    export = paths.data_dir / "export.csv"
    sample_car(5, MONTHS[0]).assign(market="uk").to_csv(export, index=False)
    mapping = paths.data_dir / "mapping.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {"path": str(export), "format": "csv", "date_column": "snapshot_date", "market": "uk"}
        ),
        encoding="utf-8",
    )
    resource = LandingResource(landing_dir=str(paths.landing), external_mapping_paths=[str(mapping)])

    inputs, rejections = collect_inputs(resource.folder(), resource.external_sources(), "uk", "customer_id")

    assert inputs == []
    reasons = sorted(r.reason.rsplit("/", 1)[-1] for r in rejections)
    assert any(r.startswith("notes.txt: file name does not match") for r in reasons)
    assert sum("two files for snapshot 2024-02-29" in r for r in reasons) == 2
    clash = [r for r in rejections if "is offered by several sources" in r.reason]
    assert {r.source for r in clash} == {
        str(paths.landing / "uk" / f"car_{MONTHS[0]}.parquet"),
        f"{export}#market=uk&snapshot={MONTHS[0]}",
    }


def test_a_market_registered_by_hand_with_an_invalid_code_fails_naming_it_and_the_rule(
    paths, resources, instance
):
    # Dagster accepts any partition key; 'UK' cannot be a table name (issue 15: a raw ValueError).
    land_good_market(paths.landing, "uk")

    result = materialize(instance, resources, "UK", raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.to_string()
    assert "market 'UK' is not a valid market code" in message
    assert "a lower-case letter" in message
    assert "^[a-z][a-z0-9_]{0,39}$" in message
