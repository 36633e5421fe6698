"""The scored snapshot's Data Checker 1 record at release: extreme shifts per cell, accepted restatements.

Issue 15: an extreme shift (`extreme_psi`) in a CAR column holds back the release of a cell whose
champion reads the column, and is only a warning for a cell whose champion does not; a release of a
snapshot whose version is an accepted restatement names it in its record. The cell is hand-built
(`support.release_cell`); the verdict rows are written as Data Checker 1 leaves them.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from support.release_cell import JULY, JUNE, MARKET, MODEL, V1, month, new_cell, probabilities

from factory_assets.core.car.admit import SnapshotVerdict
from factory_assets.core.car.verdicts import ExtremeShift
from factory_assets.core.model import registry
from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release import tables
from factory_assets.core.release.score_checks import RULES
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse

FEATURES = ["tenure_months", "arpu", "viewing_hours__mean3", "viewing_hours__lag1"]


@pytest.fixture
def cell(paths: FactoryPaths, warehouse: Warehouse) -> StageContext:
    """The hand-built cell, its champion v1 reading `FEATURES`, released in June."""
    ctx = new_cell(paths, warehouse)
    row = {"market": MARKET, "model": MODEL, "model_version": V1["version"]}
    metrics = json.dumps({"auc": 0.75, "test_base_rate": V1["rate"]})
    registry.write(
        warehouse, Table.MODELS, {**row, "metrics": metrics, "features": json.dumps(FEATURES)}, "t"
    )
    verdict(warehouse, JUNE)
    june = month(ctx, JUNE, V1, probabilities(1, *V1["shape"]))
    assert june.status == "released", june.reason
    return ctx


def verdict(
    warehouse: Warehouse, day: dt.date, extreme: dict[str, float] | None = None, restatement: str = ""
) -> None:
    """The admitted verdict of `day` as Data Checker 1 stores it."""
    shift = ExtremeShift(extreme or {}, 3.0, str(day - dt.timedelta(days=30))) if extreme else ExtremeShift()
    reasons = [f"extreme_psi (warning): extreme shift: {', '.join(extreme)}"] if extreme else []
    stored = SnapshotVerdict(
        MARKET, day, f"landing/{MARKET}/car_{day}.parquet", f"{day:%Y%m%d}" + "ab" * 28,
        "warn" if extreme else "pass", reasons, True, restatement, 3000, shift,
    )  # fmt: skip
    key = {"market": MARKET, "snapshot_date": day, "content_hash": stored.content_hash}
    warehouse.replace_partition(Table.CAR_VERDICTS, stored.frame("rules"), key, "t")


def results(outcome) -> dict:
    return {r.check: r for r in outcome.results}


def test_an_extreme_shift_in_a_column_the_champion_reads_holds_the_cell_back(cell):
    verdict(cell.warehouse, JULY, {"viewing_hours": 8.31, "satisfaction_score": 5.2})

    july = month(cell, JULY, V1, probabilities(2, *V1["shape"]))

    assert july.held_back
    sound = results(july)["features_sound"]
    assert not sound.passed
    assert (sound.value, sound.threshold) == (8.31, 3.0)
    assert sound.detail.startswith(f"viewing_hours (PSI 8.31) shifted extremely in snapshot {JULY}")
    assert f"champion {V1['version'][:12]} reads them" in sound.detail
    assert "satisfaction_score" not in sound.detail, "only the columns the champion reads hold it back"
    assert sound.reference == f"Data Checker 1 verdict of snapshot {JULY} (warn)"
    assert "features_sound: viewing_hours (PSI 8.31)" in july.reason
    stored = cell.warehouse.query(
        f"select detail from {Table.SCORE_CHECK_RESULTS} where \"check\" = 'features_sound'"
    )
    assert "viewing_hours (PSI 8.31)" in stored.iloc[0]["detail"]


def test_an_extreme_shift_in_a_column_the_champion_does_not_read_is_a_warning(cell):
    verdict(cell.warehouse, JULY, {"satisfaction_score": 8.3})

    july = month(cell, JULY, V1, probabilities(1, *V1["shape"]) * 1.01)

    assert july.status == "released", july.reason
    sound = results(july)["features_sound"]
    assert sound.passed
    assert sound.detail == (
        f"satisfaction_score (PSI 8.30) shifted extremely in snapshot {JULY} (PSI vs "
        f"{JULY - dt.timedelta(days=30)} >= 3.0), but champion {V1['version'][:12]} reads none of them: "
        "a warning only"
    )
    assert sound.reference == f"Data Checker 1 verdict of snapshot {JULY} (warn)"


def test_a_snapshot_without_a_stored_verdict_passes_and_says_so(cell):
    july = month(cell, JULY, V1, probabilities(1, *V1["shape"]) * 1.01)

    assert july.status == "released", july.reason
    sound = results(july)["features_sound"]
    assert sound.passed and sound.reference == f"Data Checker 1 verdict of snapshot {JULY} (unrecorded)"
    assert list(RULES)[-1] == "features_sound"


def test_a_release_of_an_accepted_restatement_names_it_in_its_record(cell):
    verdict(cell.warehouse, JULY, restatement="accepted")

    july = month(cell, JULY, V1, probabilities(1, *V1["shape"]) * 1.01)

    assert july.status == "released", july.reason
    entries = tables.ledger(cell.warehouse, MARKET, MODEL)
    record = tables.record_from_entry(tables.ledger_entry(entries, july.release_id))
    assert record.restatement is not None
    assert record.restatement.startswith(
        f"accepted restatement of {JULY}: landing/{MARKET}/car_{JULY}.parquet"
    )
    assert f"in {Table.CAR_VERDICTS}" in record.restatement
    june = tables.record_from_entry(entries.iloc[0].to_dict())
    assert june.snapshot_date == JUNE
    assert june.restatement is None, "a first delivery is no restatement"


def test_a_ledger_written_before_restatements_were_kept_reads_them_as_none(cell):
    cell.warehouse.execute(lambda con: con.execute(f"alter table {Table.RELEASES} drop column restatement"))

    entries = tables.ledger(cell.warehouse, MARKET, MODEL)

    assert list(entries["status"]) == ["released"]
    assert tables.record_from_entry(entries.iloc[0].to_dict()).restatement is None
