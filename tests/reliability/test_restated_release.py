"""A re-released snapshot says why: an accepted restatement of the latest month changes the scores of
the same snapshot and model, and the release record names the release it replaces and the cause."""

import pandas as pd
from support.reliability import (
    MARKET,
    MODEL,
    cached_clean_build,
    copy_factory,
    new_instance,
    run_cell,
    run_ingest,
)

from factory_assets.core.names import Table
from factory_assets.core.release.store import ReleaseStore


def restate_latest_month(paths, share: float = 0.02) -> None:
    """Re-deliver the latest landed month with a small correction to one feature (a close restatement)."""
    latest = sorted((paths.landing / MARKET).glob("car_*.parquet"))[-1]
    frame = pd.read_parquet(latest)
    rows = frame.sample(frac=share, random_state=5).index
    frame.loc[rows, "viewing_hours"] = frame.loc[rows, "viewing_hours"] * 1.5
    frame.to_parquet(latest, index=False)


def test_a_restated_latest_month_is_re_released_with_the_reason_recorded(tmp_path_factory, tmp_path):
    paths = copy_factory(cached_clean_build(tmp_path_factory.getbasetemp()), tmp_path / "data")
    before = ReleaseStore(paths.releases).read_manifest(MARKET, MODEL)
    restate_latest_month(paths)
    with new_instance() as instance:
        assert run_ingest(paths, instance).success
        result = run_cell(paths, instance)
    assert result.success
    warehouse = paths.warehouses().union()
    verdict = warehouse.query(
        f"select restatement, admitted from {Table.CAR_VERDICTS} where market = ? and snapshot_date = ? "
        "order by _written_at desc limit 1",
        [MARKET, before.snapshot_date],
    )
    assert verdict.iloc[0].to_dict() == {"restatement": "close", "admitted": True}
    after = ReleaseStore(paths.releases).read_manifest(MARKET, MODEL)
    assert after.release_id != before.release_id, "the corrected month gives new scores"
    assert (after.snapshot_date, after.model_version) == (before.snapshot_date, before.model_version)
    record = warehouse.query(
        f"select status, reason from {Table.RELEASES} where release_id = ?", [after.release_id]
    ).iloc[0]
    assert record["status"] == "released"
    assert f"replaces {before.release_id} for the same snapshot {before.snapshot_date}" in record["reason"]
    assert "snapshot restatement: close" in record["reason"]
