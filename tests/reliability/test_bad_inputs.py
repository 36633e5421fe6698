"""The bad-input corpus: faulty CAR files and specs, each with its clear error, the cells it stops and proof
that no released score changed.

A released market (`rb`, `churn` released; `support.reliability.cached_clean_build`) is built once per
session. Each CAR fault is applied to a full copy of it, as the next monthly snapshot (or as a restated
old one), and the real stages run: `car_snapshots` with Data Checker 1, then the `rb/churn` cell from
`training_frame` to `released_scores`. Each case states which guard catches the fault and the words the
error must contain (the file or cell, the column or check, the rule). Afterwards the release files,
the manifests, the release ledger and the registry must be exactly as before: the last good release
stays in force.

Spec faults are of two kinds: those the spec loader (`load_spec`, pydantic) refuses, naming the file
and the field, and those only the CAR can reveal (a target value no customer holds, a column the CAR
lacks), which fail the cell's `training_frame` with the cell and the cause while the release stays.
"""

from __future__ import annotations

import datetime as dt
import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from support.reliability import (
    MARKET,
    MODEL,
    MONTHS,
    NEXT_MONTH,
    START,
    cached_clean_build,
    copy_factory,
    demo_config,
    new_instance,
    release_state,
    run_cell,
    run_ingest,
    table_rows,
)

from factory_assets.core import cell_status
from factory_assets.core.names import Table
from factory_assets.core.paths import DEFAULT_SPECS_DIR, FactoryPaths
from factory_assets.core.release import store as release_store
from factory_assets.core.release.reader import ReleaseReader
from factory_assets.core.specs import SpecError, load_spec
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import (
    add_months,
    generate_market,
    snapshot_path,
    write_snapshot,
)
from factory_assets.demo.faults import write_faulty_file
from factory_assets.specs_registry import SPECS

RESTATED = add_months(START, 4)
"""An already ingested month that a faulty file tries to restate."""


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> FactoryPaths:
    return cached_clean_build(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def months() -> dict[dt.date, pd.DataFrame]:
    """Good frames of the built months and the two after them (seeded, as the build generated them)."""
    return dict(generate_market(demo_config(months=MONTHS + 2), MARKET))


@dataclass(frozen=True)
class CarFault:
    """One faulty CAR input: how to write it, the check that must catch it and what its message says."""

    name: str
    write: Callable[[Path, dict[dt.date, pd.DataFrame]], Path]
    check: str
    words: list[str] = field(default_factory=list)
    names_file: bool = True
    snapshot: dt.date = NEXT_MONTH


def _kind(kind: str, file_format: str = "parquet", snapshot: dt.date = NEXT_MONTH):
    return lambda landing, frames: write_faulty_file(
        kind, landing, MARKET, snapshot, base=frames[snapshot], seed=1, file_format=file_format
    )


def _skip_a_month(landing: Path, frames: dict[dt.date, pd.DataFrame]) -> Path:
    later = add_months(NEXT_MONTH, 1)
    return write_snapshot(frames[later], snapshot_path(landing, MARKET, later, "parquet"))


def _other_market_rows(landing: Path, frames: dict[dt.date, pd.DataFrame]) -> Path:
    frame = frames[NEXT_MONTH].copy()
    frame["customer_id"] = frame["customer_id"].str.replace("RB", "XX", regex=False)
    return write_snapshot(frame, snapshot_path(landing, MARKET, NEXT_MONTH, "parquet"))


def _date_mismatch(landing: Path, frames: dict[dt.date, pd.DataFrame]) -> Path:
    frame = frames[NEXT_MONTH].copy()
    frame.loc[frame.index[:10], "snapshot_date"] = pd.Timestamp(add_months(NEXT_MONTH, 1)).as_unit("us")
    return write_snapshot(frame, snapshot_path(landing, MARKET, NEXT_MONTH, "parquet"))


LATEST = add_months(NEXT_MONTH, -1)
"""The latest month of the reference market: a restatement of it may change released scores."""


def _changed(
    change: Callable[[pd.DataFrame], pd.DataFrame], snapshot: dt.date = NEXT_MONTH, fmt: str = "parquet"
):
    """Write `change` applied to the good frame of `snapshot` (issue 15's faults)."""

    def write(landing: Path, frames: dict[dt.date, pd.DataFrame]) -> Path:
        path = snapshot_path(landing, MARKET, snapshot, fmt)
        frame = change(frames[snapshot].copy())
        if fmt == "csv":
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            return path
        return write_snapshot(frame, path)

    return write


def _restated_half(frame: pd.DataFrame) -> pd.DataFrame:
    half = frame.iloc[: len(frame) // 2].copy()
    half["customer_id"] = half["customer_id"] + "X"
    return half.assign(arpu=half["arpu"] * 100)


def _semicolon_csv(landing: Path, frames: dict[dt.date, pd.DataFrame]) -> Path:
    path = snapshot_path(landing, MARKET, NEXT_MONTH, "csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[NEXT_MONTH].to_csv(path, index=False, sep=";")
    return path


ISSUE_15_FAULTS = [
    CarFault(
        "case_clashing_columns",
        _changed(lambda f: f.assign(ARPU=f["arpu"])),
        "contract",
        ["differ only in case", "'ARPU'"],
    ),
    CarFault(
        "trailing_delimiter_csv",
        _changed(lambda f: f.assign(**{"": None}), fmt="csv"),
        "contract",
        ["'Unnamed: ", "no header"],
    ),
    CarFault(
        "infinite_value",
        _changed(lambda f: f.assign(arpu=f["arpu"].where(f.index > 2, float("inf")))),
        "contract",
        ["column 'arpu'", "infinite value(s)"],
    ),
    CarFault("semicolon_csv", _semicolon_csv, "contract", ["looks ';'-delimited"]),
    CarFault(
        "restated_old_month_half_rekeyed_x100",
        _changed(_restated_half, RESTATED),
        "restatement",
        ["large restatement", "arpu"],
        names_file=False,
        snapshot=RESTATED,
    ),
    CarFault(
        "restated_latest_month_x100",
        _changed(lambda f: f.assign(viewing_hours=f["viewing_hours"] * 100), LATEST),
        "restatement",
        ["viewing_hours"],
        names_file=False,
        snapshot=LATEST,
    ),
]


CAR_FAULTS = [
    CarFault("missing_column", _kind("missing_column"), "contract", ["required column(s) missing: arpu"]),
    CarFault("renamed_column", _kind("renamed_column"), "contract", ["missing: viewing_hours"]),
    CarFault("wrong_type", _kind("wrong_type"), "contract", ["column 'sessions'", "'unknown'"]),
    CarFault("duplicate_keys", _kind("duplicate_keys"), "contract", ["customer_id", "uniqueness"]),
    CarFault("empty", _kind("empty"), "contract", ["holds no rows"]),
    CarFault(
        "truncated_parquet", _kind("truncated_parquet"), "contract", ["cannot read the file as parquet"]
    ),
    CarFault(
        "bad_encoding_csv",
        _kind("bad_encoding_csv"),
        "contract",
        ["cannot read the file as csv", "not UTF-8 (byte 0xfc at line", "re-export it as UTF-8"],
    ),
    CarFault(
        "negative_counts",
        _kind("negative_counts"),
        "contract",
        ["column 'support_calls'", "greater_than_or_equal_to(0.0)"],
    ),
    CarFault("future_date", _kind("future_date"), "contract", ["snapshot_date after"]),
    CarFault("missing_column_csv", _kind("missing_column", "csv"), "contract", ["missing: arpu", ".csv"]),
    CarFault("wrong_type_csv", _kind("wrong_type", "csv"), "contract", ["column 'sessions'"]),
    CarFault(
        "restated_month_missing_column",
        _kind("missing_column", snapshot=RESTATED),
        "contract",
        ["missing: arpu"],
        snapshot=RESTATED,
    ),
    CarFault("rows_of_another_date", _date_mismatch, "contract", ["snapshot_date"]),
    CarFault(
        "category_explosion",
        _kind("category_explosion"),
        "category_explosion",
        ["region", "300 new levels"],
        names_file=False,
    ),
    CarFault(
        "volume_halved",
        _kind("volume_halved"),
        "customer_overlap",
        ["customers of 2025-09-01 are in 2025-10-01"],
        names_file=False,
    ),
    CarFault("customers_replaced", _other_market_rows, "customer_overlap", ["0.0%"], names_file=False),
    CarFault(
        "skipped_month",
        _skip_a_month,
        "continuity",
        ["missing month(s) 2025-10"],
        names_file=False,
        snapshot=add_months(NEXT_MONTH, 1),
    ),
]


def _failed_checks(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.query(
        'select snapshot_date, "check", severity, detail from ops.car_check_results where not passed'
    )


def _durable(paths: FactoryPaths) -> dict[str, object]:
    """The release files and manifests, the release ledger and the registry: what must not move."""
    wh = paths.warehouses().union()
    return {
        "release_files": release_state(paths),
        "ledger": table_rows(wh, Table.RELEASES, "*", "release_id"),
        "models": table_rows(wh, Table.MODELS, "*", "model_version"),
        "decisions": table_rows(wh, Table.DECISIONS, "*", "decision_id"),
        "scores": table_rows(wh, "scores.scores", "*", "customer_id"),
    }


def _car_rows(paths: FactoryPaths, snapshot: dt.date) -> list[tuple]:
    wh = paths.warehouses().union()
    sql = (
        f"select * exclude (_run_id, _written_at) from car.{MARKET} "
        "where snapshot_date = ? order by customer_id"
    )
    frame = wh.query(sql, [snapshot])
    return [tuple("<NA>" if pd.isna(v) else str(v) for v in row) for row in frame.itertuples(index=False)]


CAR_FAULTS += ISSUE_15_FAULTS


@pytest.mark.parametrize("fault", CAR_FAULTS, ids=lambda f: f.name)
def test_faulty_car_is_caught_stops_the_market_and_keeps_the_release(fault, released, months, tmp_path):
    paths = copy_factory(released, tmp_path / "data")
    before, restated_before = _durable(paths), _car_rows(paths, RESTATED)
    bad_file = fault.write(paths.landing, months)

    with new_instance() as instance:
        ingest = run_ingest(paths, instance)
        cell = run_cell(paths, instance)

    wh = paths.warehouses().union()
    assert ingest.success, "the ingest step stores what it can and reports the fault through the checks"
    failed = _failed_checks(wh)
    caught = failed[failed["check"] == fault.check]
    assert len(caught) == 1, (
        f"{fault.name}: expected check '{fault.check}' to fail, failed: {list(failed['check'])}"
    )
    detail = caught.iloc[0]["detail"]
    for word in [*fault.words, *([bad_file.name] if fault.names_file else [])]:
        assert word in detail, f"{fault.name}: '{word}' missing from the check's message: {detail[:600]}"
    gate = cell_status.latest(wh, MARKET, cell_status.MARKET_WIDE, "data_checker_1")
    assert gate.status == "failed"
    assert fault.check in gate.message
    # which cells stop: the gate is market-wide, so every model of the market is held at training_frame
    for model in SPECS:
        assert cell_status.upstream_problem(wh, MARKET, model, ["data_checker_1"]), model
    assert not cell.success
    frame = cell_status.latest(wh, MARKET, MODEL, "training_frame")
    assert frame.status == "skipped"
    assert "data_checker_1" in frame.message
    assert fault.check in frame.message
    assert _durable(paths) == before, (
        f"{fault.name}: a release, the ledger, the registry or the scores changed"
    )
    assert _car_rows(paths, RESTATED) == restated_before, "a rejected file must not touch ingested data"
    if fault.check == "contract":
        assert not _car_rows(paths, fault.snapshot) or fault.snapshot == RESTATED, "rejected rows were stored"


def test_all_null_feature_warns_and_nothing_unchecked_is_released(released, months, tmp_path):
    """A nullable column null in every row passes the contract with a null-rate warning naming it.

    Today the cell then stops at `drift_report` (Evidently refuses an all-null column; see
    docs/reliability.md) and the release in force stays. Should the drift report learn to skip such
    columns, the cell goes on: then anything released must have passed Data Checker 2.
    """
    paths = copy_factory(released, tmp_path / "data")
    before = _durable(paths)
    _kind("all_null_feature")(paths.landing, months)
    with new_instance() as instance:
        assert run_ingest(paths, instance).success
        cell = run_cell(paths, instance)
    wh = paths.warehouses().union()
    failed = _failed_checks(wh).set_index("check")
    assert failed.loc["null_rate", "severity"] == "warning"
    assert "viewing_hours" in failed.loc["null_rate", "detail"]
    assert cell_status.latest(wh, MARKET, cell_status.MARKET_WIDE, "data_checker_1").status == "ok"
    drift = cell_status.latest(wh, MARKET, MODEL, "drift_report")
    if drift.status == "failed":
        assert not cell.success and "viewing_hours" in drift.message, drift
        assert _durable(paths) == before
        return
    after = release_state(paths)
    if after != before["release_files"]:
        checks = wh.query("select passed from ops.score_check_results where market = ?", [MARKET])
        assert checks["passed"].all(), "a release was published although Data Checker 2 failed"


def _extreme_month(
    paths: FactoryPaths, months: dict[dt.date, pd.DataFrame], change: Callable[[pd.DataFrame], pd.DataFrame]
) -> tuple[dg.ExecuteInProcessResult, Warehouse]:
    """Land `change` of the next month, ingest it and run the cell: (the cell's run, the warehouse)."""
    _changed(change)(paths.landing, months)
    with new_instance() as instance:
        ingest, cell = run_ingest(paths, instance), run_cell(paths, instance)
    wh = paths.warehouses().union()
    assert ingest.success
    gate = cell_status.latest(wh, MARKET, cell_status.MARKET_WIDE, "data_checker_1")
    assert gate.status == "ok" and "extreme_psi" in gate.message, (
        "a warning at the snapshot: the market goes on"
    )
    return cell, wh


def _latest_release_entry(wh: Warehouse) -> pd.Series:
    return wh.query(
        f"select * from {Table.RELEASES} where market = ? and model = ? order by _written_at desc limit 1",
        [MARKET, MODEL],
    ).iloc[0]


def test_a_feature_x100_the_champion_reads_holds_its_cell_back(released, months, tmp_path):
    """`extreme_psi` per cell: the month is admitted with a warning naming the column, and the release
    of the cell whose champion reads it is held back, naming the column, its PSI and the snapshot."""
    paths = copy_factory(released, tmp_path / "data")
    served = release_state(paths)

    cell, wh = _extreme_month(paths, months, lambda f: f.assign(viewing_hours=f["viewing_hours"] * 100))

    extreme = _failed_checks(wh).query("check == 'extreme_psi'")
    assert list(extreme["severity"]) == ["warning"]
    assert "viewing_hours (PSI" in extreme.iloc[0]["detail"]
    assert not cell.success
    held = _latest_release_entry(wh)
    assert held["status"] == "held_back"
    sound = wh.query(f"select * from {Table.SCORE_CHECK_RESULTS} where \"check\" = 'features_sound'").iloc[0]
    assert not sound["passed"] and sound["value"] >= sound["threshold"] == 3.0
    assert sound["reference"] == f"Data Checker 1 verdict of snapshot {NEXT_MONTH} (warn)"
    named = (
        f"features_sound: viewing_hours (PSI {sound['value']:.2f}) shifted extremely in snapshot {NEXT_MONTH}"
    )
    assert named in str(held["reason"])
    assert release_state(paths) == served, "the release in force stays"


def test_a_feature_x100_the_champion_does_not_read_is_released_with_the_warning_recorded(
    released, months, tmp_path
):
    """A survey score re-scaled x100 (blanks filled) in a column the champion does not read: a warning
    in the snapshot's verdict, the scoring report and Data Checker 2; the cell is released."""
    paths = copy_factory(released, tmp_path / "data")
    features = paths.warehouses().union().query(f"select features from {Table.MODELS}")["features"]
    assert all("satisfaction_score" not in f for f in features), "the case needs a column no champion reads"

    def rescaled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(satisfaction_score=frame["satisfaction_score"].fillna(5) * 100)

    cell, wh = _extreme_month(paths, months, rescaled)

    assert cell.success
    assert _latest_release_entry(wh)["status"] == "released"
    verdict = wh.query(
        f"select verdict, reasons from {Table.CAR_VERDICTS} where snapshot_date = ?", [NEXT_MONTH]
    )
    assert list(verdict["verdict"]) == ["warn"]
    assert "extreme_psi (warning): extreme shift" in verdict.iloc[0]["reasons"]
    scored = cell.asset_materializations_for_node("scores")[0].metadata
    assert scored["snapshot_verdict"].value == "warn"
    assert "satisfaction_score (PSI" in scored["snapshot_verdict_reasons"].value
    sound = wh.query(f"select * from {Table.SCORE_CHECK_RESULTS} where \"check\" = 'features_sound'").iloc[0]
    assert sound["passed"]
    assert (
        "satisfaction_score (PSI" in sound["detail"]
        and "reads none of them: a warning only" in sound["detail"]
    )


def test_half_written_file_is_ignored_until_complete(released, months, tmp_path):
    paths = copy_factory(released, tmp_path / "data")
    before = _durable(paths)
    part = _kind("half_written")(paths.landing, months)
    with new_instance() as instance:
        assert run_ingest(paths, instance).success
    wh = paths.warehouses().union()
    assert part.name.endswith(".part")
    assert _car_rows(paths, NEXT_MONTH) == []
    assert _failed_checks(wh).empty
    assert cell_status.latest(wh, MARKET, cell_status.MARKET_WIDE, "data_checker_1").status == "ok"
    assert _durable(paths) == before


def test_disk_full_while_publishing_fails_the_cell_naming_the_file_and_keeps_the_release(
    released, months, tmp_path, monkeypatch
):
    """Issue 15: `OSError: [Errno 28]` with no path, no record, and a run reported as a success."""
    paths = copy_factory(released, tmp_path / "data")
    before = _durable(paths)
    write_snapshot(months[NEXT_MONTH], snapshot_path(paths.landing, MARKET, NEXT_MONTH, "parquet"))

    def full(path: Path, payload: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with new_instance() as instance:
        assert run_ingest(paths, instance).success
        monkeypatch.setattr(release_store, "write_atomic", full)
        cell = run_cell(paths, instance)
        monkeypatch.undo()

    wh = paths.warehouses().union()
    outcome = cell_status.latest(wh, MARKET, MODEL, "released_scores")
    assert not cell.success
    assert outcome.status == "failed", outcome
    for word in ["WriteFailedError", f"cannot write {paths.releases / MARKET / MODEL}", "the disk is full"]:
        assert word in outcome.message, f"'{word}' missing from: {outcome.message[:400]}"
    assert table_rows(wh, Table.RELEASES, "*", "release_id") == before["ledger"], "no record of a release"
    assert release_state(paths) == before["release_files"]
    served = ReleaseReader(paths.releases).get(MARKET, MODEL)
    in_force = before["release_files"]["manifests"][f"{MARKET}/{MODEL}/current.json"]
    assert served.manifest.release_id == in_force["release_id"]


def test_a_market_registered_by_hand_with_an_invalid_code_fails_naming_it_and_the_rule(released, tmp_path):
    """Issue 15: a partition 'RB' added by hand (Dagster accepts any key) ended in a raw ValueError."""
    paths = copy_factory(released, tmp_path / "data")
    before = _durable(paths)
    with new_instance(("RB",)) as instance:
        result = run_ingest(paths, instance, "RB")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.to_string()
    for word in [
        "market 'RB' is not a valid market code",
        "a lower-case letter",
        "delete the partition 'RB'",
    ]:
        assert word in message, f"'{word}' missing from: {message[:400]}"
    assert _durable(paths) == before


# ---- specs -------------------------------------------------------------------------------------------

CHURN = yaml.safe_load((DEFAULT_SPECS_DIR / "churn.yaml").read_text(encoding="utf-8"))


def _with(**changes: object) -> dict[str, object]:
    spec = yaml.safe_load(yaml.safe_dump(CHURN))
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return spec


SPEC_FAULTS = {
    "unknown_top_level_field": (_with(owner="me"), "owner", "Extra inputs are not permitted"),
    "unknown_nested_field": (_with(target__horizn=2), "target.movement.horizn", "Extra inputs"),
    "horizon_wrong_type": (_with(target__horizon="two"), "target.movement.horizon", "valid integer"),
    "horizon_zero": (_with(target__horizon=0), "target.movement.horizon", "greater than or equal to 1"),
    "horizon_too_far": (_with(target__horizon=99), "target.movement.horizon", "less than or equal to 24"),
    "from_equals_to": (_with(target__to=["basic"]), "target.movement", "share ['basic']"),
    "empty_from": (_with(target__from=[]), "target.movement.from", "at least 1 item"),
    "unknown_target_kind": (_with(target={"kind": "regression", "column": "arpu"}), "target", "regression"),
    "bad_population_op": (
        _with(population=[{"column": "age", "op": "~", "value": 3}]),
        "population.0.op",
        "'=='",
    ),
    "validation_share_too_big": (
        _with(sampling__validation_share=0.7),
        "sampling.validation_share",
        "less than 0.5",
    ),
    "negative_ratio": (
        _with(sampling__negatives_per_positive=-1),
        "sampling.negatives_per_positive",
        "greater than 0",
    ),
    "leakage_auc_below_chance": (
        _with(cleaning__leakage_auc=0.4),
        "cleaning.leakage_auc",
        "greater than 0.5",
    ),
    "unknown_aggregation": (
        _with(features__history__aggregations=["median"]),
        "features.history.aggregations.0",
        "'mean'",
    ),
    "output_format_typo": (_with(output__format="probabilities"), "output.format", "'probability'"),
    "name_differs_from_file": (_with(name="churn_v2"), "name", "differs from the file name"),
    "bad_model_name": ({k: v for k, v in CHURN.items() if k != "name"}, "name", "must match"),
}
SPEC_FILE_NAMES = {"bad_model_name": "Churn-V2.yaml"}


@pytest.mark.parametrize("case", sorted(SPEC_FAULTS), ids=str)
def test_invalid_spec_is_refused_naming_the_file_and_field(case, tmp_path):
    spec, field_name, reason = SPEC_FAULTS[case]
    path = tmp_path / SPEC_FILE_NAMES.get(case, "churn.yaml")
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message, message
    assert f"field '{field_name}'" in message, message
    assert reason in message, message


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("target: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
    ids=["broken_yaml", "top_level_list", "empty_file"],
)
def test_unreadable_spec_is_refused_naming_the_file(payload, reason, tmp_path):
    path = tmp_path / "churn.yaml"
    path.write_text(payload, encoding="utf-8")
    with pytest.raises(SpecError, match=reason) as error:
        load_spec(path)
    assert str(path) in str(error.value)


DATA_SPEC_FAULTS = {
    "target_value_nobody_holds": (
        _with(target__from=["platinum"]),
        ["rb/churn", "no labelled rows", "'from'"],
    ),
    "target_product_not_in_car": (
        _with(target__product="no_such_col"),
        ["rb/churn", "target.product", "no_such_col"],
    ),
    "label_column_not_binary": (
        _with(target={"kind": "label", "column": "arpu", "horizon": 1}),
        ["rb/churn", "'arpu'", "other than 0/1"],
    ),
    "horizon_beyond_the_data": (_with(target__horizon=24), ["rb/churn", "horizon 24", "beyond the data"]),
    "feature_not_in_car": (
        _with(features__include=["nope_col"]),
        ["rb/churn", "features.include", "nope_col"],
    ),
    "population_number_against_text_column": (
        _with(population=[{"column": "region", "op": ">=", "value": 3}]),
        ["rb/churn", "population filter on 'region'", "compares a number (int) with a text column (VARCHAR)"],
    ),
    "population_column_not_in_car": (
        _with(population=[{"column": "nope_col", "op": ">=", "value": 3}]),
        ["rb/churn", "population filter", "nope_col"],
    ),
}


@pytest.fixture(scope="module")
def spec_copy(released, tmp_path_factory) -> FactoryPaths:
    return copy_factory(released, tmp_path_factory.mktemp("spec_faults") / "data")


@pytest.mark.parametrize("case", sorted(DATA_SPEC_FAULTS), ids=str)
def test_spec_impossible_on_the_car_fails_the_cell_and_keeps_the_release(
    case, spec_copy, tmp_path, monkeypatch
):
    raw, words = DATA_SPEC_FAULTS[case]
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setitem(SPECS, MODEL, load_spec(path))  # valid as a spec: only the CAR shows it is wrong
    before = _durable(spec_copy)
    with new_instance() as instance:
        result = run_cell(spec_copy, instance)
    wh = spec_copy.warehouses().union()
    outcome = cell_status.latest(wh, MARKET, MODEL, "training_frame")
    assert not result.success
    assert outcome.status == "failed", outcome
    for word in words:
        assert word in outcome.message, f"{case}: '{word}' missing from: {outcome.message[:400]}"
    assert _durable(spec_copy) == before


def test_corpus_size():
    """The corpus: 55 faulty inputs here, 15 more at the core (tests/core/car/test_admit.py) and one in
    tests/core/model/test_drift.py (no feature with values on both sides of the drift report): 71.

    Here: the CAR faults, 6 CAR-side tests (an all-null feature, a feature x100 that the champion
    reads and one it does not, a half-written file, a full disk while publishing, an invalid market
    registered by hand), the invalid and unreadable specs, and the specs impossible on the CAR.
    """
    here = len(CAR_FAULTS) + 6 + len(SPEC_FAULTS) + 3 + len(DATA_SPEC_FAULTS)
    core_cases = 15 + 1
    assert here == 55, here
    assert here + core_cases >= 71, here + core_cases
