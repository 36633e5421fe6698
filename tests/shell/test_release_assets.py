"""The release stage in-process: Data Checker 2, `released_scores` and `factory_status` with dg.materialize.

The upstream `scores` asset is stood in for by a small asset with the same key that writes the
test's scores into `scores.scores` and records the stage as ok, as the real one does; the
eligible population (the cell's rows of `prep.frames`) and the champion's registry row are written
by the test.
"""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from factory_assets.core import cell_status
from factory_assets.core.cell_status import StageOutcome
from factory_assets.core.names import Table
from factory_assets.core.release.gate import release_cell
from factory_assets.core.release.score_checks import RULES
from factory_assets.core.release.store import ReleaseStore
from factory_assets.core.release.tables import load_gate_facts
from factory_assets.core.stage import StageContext
from factory_assets.core.warehouse import Warehouse
from factory_assets.interventions import release_override_job, release_withdrawal_job
from factory_assets.partitions import cell_partitions, cells_of
from factory_assets.release import CHECKS, data_checker_2, factory_status, released_scores
from factory_assets.specs_registry import SPECS
from resources.warehouse import WarehouseResource

MARKET = "uk"
SNAPSHOT = dt.date(2026, 10, 31)
N = 200
BASE_RATE = 0.1


def make_scores(model: str, seed: int = 0, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probability = rng.beta(2, 18, n)
    rank = probability.argsort().argsort() + 1
    return pd.DataFrame(
        {
            "market": MARKET,
            "model": model,
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "snapshot_date": SNAPSHOT,
            "raw_score": probability,
            "probability": probability,
            "percentile": 100.0 * rank / n,
            "decile": 10 - (rank - 1) * 10 // n,
            "model_version": f"{model}-v1",
            "decision_id": "d1",
            "run_id": "r1",
            "scored_at": dt.datetime(2026, 11, 1, 6),
        }
    )


def corrupt(frame: pd.DataFrame, fault: str) -> pd.DataFrame:
    frame = frame.copy()
    if fault == "nan":
        frame.loc[3, "probability"] = np.nan
    elif fault == "out_of_range":
        frame.loc[3, "probability"] = 1.7
    elif fault == "duplicate":
        frame.loc[3, "customer_id"] = frame.loc[4, "customer_id"]
    elif fault == "missing_part":
        frame = frame.iloc[: N // 2]
    return frame


def stand_in_scores(frames: dict[str, pd.DataFrame]) -> dg.AssetsDefinition:
    """The upstream stage's contract: scores.scores per cell, and 'scores' recorded as ok."""

    @dg.asset(name="scores", partitions_def=cell_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def _scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> None:
        wh = warehouse.market(MARKET)
        for cell in cells_of(context):
            partition = {"market": cell.market, "model": cell.model}
            wh.replace_partition("scores.scores", frames[cell.model], partition, context.run_id)
            cell_status.record(wh, StageOutcome(cell.market, cell.model, "scores", "ok"), context.run_id)

    return _scores


def prepare_upstream(warehouse: Warehouse, models: list[str]) -> None:
    """The market's CAR, the eligible population and the champion's registry row, as upstream leaves them."""
    car = pd.DataFrame({"customer_id": [f"c{i:04d}" for i in range(N)], "snapshot_date": SNAPSHOT})
    warehouse.replace_partition(f"car.{MARKET}", car, {"snapshot_date": SNAPSHOT}, "t")
    for model in models:
        population = pd.DataFrame(
            {"customer_id": [f"c{i:04d}" for i in range(N)], "snapshot_date": SNAPSHOT, "target": None}
        ).astype({"target": "Int64"})
        warehouse.replace_partition("prep.frames", population, {"market": MARKET, "model": model}, "t")
        metrics = json.dumps({"auc": 0.81, "test_base_rate": BASE_RATE})
        row = pd.DataFrame(
            [
                {
                    "model_version": f"{model}-v1",
                    "market": MARKET,
                    "model": model,
                    "trained_at": dt.datetime(2026, 10, 1),
                    "metrics": metrics,
                }
            ]
        )
        warehouse.replace_partition(Table.MODELS, row, {"model_version": f"{model}-v1"}, "t")


@pytest.fixture
def instance_with_market(instance: dg.DagsterInstance) -> dg.DagsterInstance:
    instance.add_dynamic_partitions("markets", [MARKET])
    return instance


def run_release(instance, resources, frames: dict[str, pd.DataFrame], **kwargs) -> dg.ExecuteInProcessResult:
    assets = [stand_in_scores(frames), released_scores, *CHECKS]
    return dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False, **kwargs)


def cell_key(model: str) -> str:
    return f"{MARKET}|{model}"


def releases_rows(warehouse: Warehouse, model: str) -> pd.DataFrame:
    return warehouse.query("select * from release.releases where model = ? order by _written_at", [model])


def test_first_release_publishes_and_a_rerun_of_the_same_scores_is_idempotent(
    instance_with_market, resources, warehouse, paths
):
    prepare_upstream(warehouse, ["churn"])
    frames = {"churn": make_scores("churn")}

    first = run_release(instance_with_market, resources, frames, partition_key=cell_key("churn"))
    store = ReleaseStore(paths.releases)
    manifest = store.read_manifest(MARKET, "churn")
    files = sorted(p.name for p in store.cell_dir(MARKET, "churn").iterdir())
    second = run_release(instance_with_market, resources, frames, partition_key=cell_key("churn"))

    assert first.success
    assert second.success
    assert manifest is not None
    assert manifest.output_format == "both"
    assert manifest.csv_file
    metadata = first.asset_materializations_for_node("released_scores")[0].metadata
    assert metadata["release_id"].value == manifest.release_id
    assert metadata["status"].value == "released"
    assert (
        second.asset_materializations_for_node("released_scores")[0].metadata["status"].value == "unchanged"
    )
    assert store.read_manifest(MARKET, "churn") == manifest
    assert sorted(p.name for p in store.cell_dir(MARKET, "churn").iterdir()) == files
    rows = releases_rows(warehouse, "churn")
    assert list(rows["status"]) == ["released"]
    assert list(rows["release_id"]) == [manifest.release_id]
    checks = warehouse.query("select * from ops.score_check_results where model = 'churn'")
    assert len(checks) == len(RULES)
    assert checks["passed"].all()
    evaluations = first.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations if e.asset_key == dg.AssetKey("scores")} == {
        "dc2_complete",
        "dc2_unique",
        "dc2_valid_values",
        "dc2_distribution_stable",
        "dc2_mean_near_expected",
        "dc2_ranks_stable",
        "dc2_snapshot_current",
        "dc2_features_sound",
    }
    assert all(e.passed for e in evaluations)
    published = store.load_release(manifest).set_index("customer_id")
    expected = frames["churn"].set_index("customer_id")
    assert np.allclose(published["probability"], expected.loc[published.index, "probability"])


FAULTS = {
    "nan": "valid_values",
    "out_of_range": "valid_values",
    "duplicate": "unique",
    "missing_part": "complete",
}


def test_bad_scores_are_held_back_and_the_previous_release_stays_in_force(
    instance_with_market, resources, warehouse, paths
):
    prepare_upstream(warehouse, ["addon_kids"])
    key = cell_key("addon_kids")
    assert run_release(
        instance_with_market, resources, {"addon_kids": make_scores("addon_kids", seed=1)}, partition_key=key
    ).success
    store = ReleaseStore(paths.releases)
    before = store.read_manifest(MARKET, "addon_kids")

    for fault, rule in FAULTS.items():
        bad = corrupt(make_scores("addon_kids", seed=1), fault)
        result = run_release(instance_with_market, resources, {"addon_kids": bad}, partition_key=key)

        assert not result.success, f"{fault}: a single held-back cell fails its run loudly"
        assert store.read_manifest(MARKET, "addon_kids") == before, fault
        assert len(store.load_release(before)) == N, f"{fault}: the last good release is intact"
        latest = releases_rows(warehouse, "addon_kids").iloc[-1]
        assert latest["status"] == "held_back", fault
        assert latest["reason"].startswith(f"{rule}:") or f"; {rule}:" in latest["reason"], (
            fault,
            latest["reason"],
        )
        assert latest["serving_release_id"] == before.release_id, fault
        outcome = cell_status.latest(warehouse, MARKET, "addon_kids", "released_scores")
        assert outcome.status == "failed" and "held back" in outcome.message, fault
        assert before.release_id in outcome.message, fault
        failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
        assert f"dc2_{rule}" in failed, fault
        record = instance_with_market.fetch_observations(dg.AssetKey("released_scores"), limit=1).records[0]
        observation = record.asset_observation
        assert observation.partition == key and observation.metadata["status"].value == "held_back", fault
        assert observation.metadata["still_serving"].value == before.release_id, fault
    bad = corrupt(make_scores("addon_kids", seed=1), "nan")
    assert not run_release(instance_with_market, resources, {"addon_kids": bad}, partition_key=key).success
    held = releases_rows(warehouse, "addon_kids").query("status == 'held_back'")
    assert len(held) == len(FAULTS), "one record per distinct attempt: a rerun of the same scores adds none"


def good_and_bad_row(warehouse):
    """Two prepared cells in one range: addon_kids with good scores, addon_movies with NaN scores."""
    models = ["addon_kids", "addon_movies"]
    prepare_upstream(warehouse, models)
    frames = {
        "addon_kids": make_scores("addon_kids"),
        "addon_movies": corrupt(make_scores("addon_movies"), "nan"),
    }
    tags = {
        "dagster/asset_partition_range_start": cell_key(models[0]),
        "dagster/asset_partition_range_end": cell_key(models[1]),
    }
    return frames, tags


def test_a_range_run_releases_the_good_cells_and_holds_back_the_bad_one(
    instance_with_market, resources, warehouse, paths
):
    frames, tags = good_and_bad_row(warehouse)

    result = run_release(instance_with_market, resources, frames, tags=tags)

    assert result.success, "one held-back cell does not hold back its row"
    store = ReleaseStore(paths.releases)
    assert store.read_manifest(MARKET, "addon_kids") is not None
    assert store.read_manifest(MARKET, "addon_movies") is None
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["dc2_valid_values"].passed
    assert evaluations["dc2_valid_values"].metadata["failing_cells"].value == "uk/addon_movies"
    assert evaluations["dc2_unique"].passed
    assert not evaluations["released_scores_cells_ok"].passed
    assert "uk/addon_movies" in evaluations["released_scores_cells_ok"].metadata["not_ok"].value
    cells_table = result.asset_materializations_for_node("released_scores")[0].metadata["cells"].value
    assert "held back" in cells_table
    assert "nothing (never released)" in cells_table


def test_a_shifted_distribution_is_held_back_against_the_last_release(
    instance_with_market, resources, warehouse
):
    prepare_upstream(warehouse, ["addon_sports"])
    key = cell_key("addon_sports")
    assert run_release(
        instance_with_market, resources, {"addon_sports": make_scores("addon_sports")}, partition_key=key
    ).success
    shifted = make_scores("addon_sports")
    shifted["probability"] = np.clip(shifted["probability"] * 1.8, 0, 1)
    shifted["probability"] = shifted["probability"].sample(frac=1.0, random_state=3).to_numpy()

    result = run_release(instance_with_market, resources, {"addon_sports": shifted}, partition_key=key)

    assert not result.success
    reason = releases_rows(warehouse, "addon_sports").iloc[-1]["reason"]
    assert "distribution_stable: PSI" in reason
    assert "ranks_stable: Spearman" in reason


def test_the_checks_skip_cells_whose_scores_stage_did_not_succeed(instance_with_market, resources, warehouse):
    prepare_upstream(warehouse, ["churn"])
    frames = {"churn": make_scores("churn")}

    @dg.asset(name="scores", partitions_def=cell_partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def failing_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> None:
        wh = warehouse.market(MARKET)
        wh.replace_partition("scores.scores", frames["churn"], {"market": MARKET, "model": "churn"}, "t")
        cell_status.record(wh, StageOutcome(MARKET, "churn", "scores", "failed", "boom"), context.run_id)

    result = dg.materialize(
        [failing_scores, data_checker_2],
        instance=instance_with_market,
        resources=resources,
        partition_key=cell_key("churn"),
    )

    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "dc2_complete")
    assert evaluation.passed
    assert evaluation.metadata["cells_evaluated"].value == 0
    assert "boom" in evaluation.metadata["not_evaluated"].value


def test_factory_status_builds_the_grid_page_and_table(instance_with_market, resources, warehouse, paths):
    frames, tags = good_and_bad_row(warehouse)
    run_release(instance_with_market, resources, frames, tags=tags)

    result = dg.materialize([factory_status], instance=instance_with_market, resources=resources)

    assert result.success
    grid = warehouse.query("select * from ops.factory_status")
    assert len(grid) == 6, "one row per model of the market"
    movies = grid.set_index("model").loc["addon_movies"]
    assert movies["health"] == "failing"
    assert bool(movies["held_back"])
    assert "valid_values" in movies["held_back_reason"]
    kids = grid.set_index("model").loc["addon_kids"]
    assert kids["released_scores"] == "ok"
    assert isinstance(kids["last_release_id"], str)
    metadata = result.asset_materializations_for_node("factory_status")[0].metadata
    assert metadata["failing"].value >= 1
    assert "addon_movies" in metadata["grid"].value
    page = (paths.reports / "status.html").read_text(encoding="utf-8")
    assert '<tr class="failing"><td class="health">' not in page or "addon_movies" in page
    assert 'class="failing"' in page
    assert "addon_movies" in page


def test_the_gate_reads_the_population_size_the_scores_record_else_the_training_frame(warehouse):
    prepare_upstream(warehouse, ["churn"])
    scores = make_scores("churn").iloc[:150]
    warehouse.replace_partition("scores.scores", scores, {"market": MARKET, "model": "churn"}, "t")
    facts = load_gate_facts(warehouse, MARKET, "churn")
    source = f"prep.frames[market={MARKET}, model=churn] at {SNAPSHOT}"
    assert (facts.expected_rows, facts.expected_rows_source) == (N, source)
    assert facts.expected_rate == BASE_RATE
    assert facts.expected_rate_source.startswith("test_base_rate of churn-v1 (no realised rate")
    realised = {"market": MARKET, "model": "churn", "model_version": "churn-v1", "n": 180, "positives": 27}
    realised_row = pd.DataFrame([{**realised, "snapshot_date": dt.date(2026, 8, 31)}])
    warehouse.replace_partition("registry.realised_performance", realised_row, realised, "t")
    facts = load_gate_facts(warehouse, MARKET, "churn")
    assert facts.expected_rate == pytest.approx(27 / 180), "the recent realised rate comes first"
    assert facts.expected_rate_source == "realised rate at 2026-08-31, 180 customers with known outcome"
    assert (facts.snapshots.latest, facts.snapshots.newer_than_scored) == (SNAPSHOT, 0)

    recorded = make_scores("churn").iloc[:150].assign(eligible_rows=N + 5)
    warehouse.execute(lambda con: con.execute("drop table scores.scores"))
    warehouse.replace_partition("scores.scores", recorded, {"market": MARKET, "model": "churn"}, "t")
    facts = load_gate_facts(warehouse, MARKET, "churn")
    assert (facts.expected_rows, facts.expected_rows_source) == (N + 5, "scores.scores.eligible_rows")
    assert len(facts.scores.frame) == 150
    assert "eligible_rows" not in facts.scores.frame.columns


def test_scores_mixing_snapshots_fail_with_a_clear_error(warehouse):
    prepare_upstream(warehouse, ["churn"])
    mixed = make_scores("churn")
    mixed.loc[:10, "snapshot_date"] = dt.date(2026, 9, 30)
    warehouse.replace_partition("scores.scores", mixed, {"market": MARKET, "model": "churn"}, "t")
    with pytest.raises(ValueError, match="uk/churn mixes 2 values of snapshot_date"):
        load_gate_facts(warehouse, MARKET, "churn")


def test_an_unknown_champion_version_holds_the_scores_back(warehouse, paths):
    prepare_upstream(warehouse, ["churn"])
    orphan = make_scores("churn").assign(model_version="never-registered")
    warehouse.replace_partition("scores.scores", orphan, {"market": MARKET, "model": "churn"}, "t")
    ctx = StageContext(warehouse, paths.models, paths.reports, paths.releases, "t")
    outcome = release_cell(ctx, SPECS["churn"], MARKET)
    assert outcome.held_back
    assert outcome.in_force is None
    assert "mean_near_expected: expected rate unknown (registry.models has no row" in outcome.reason


def test_the_override_and_withdrawal_jobs_act_on_a_held_back_cell_and_leave_records(
    instance_with_market, resources, warehouse, paths
):
    prepare_upstream(warehouse, ["churn"])
    good = make_scores("churn")
    assert run_release(
        instance_with_market, resources, {"churn": good}, partition_key=cell_key("churn")
    ).success
    store = ReleaseStore(paths.releases)
    first = store.read_manifest(MARKET, "churn").release_id
    shifted = good.assign(probability=np.clip(good["probability"] * 3, 0, 1))
    held = run_release(instance_with_market, resources, {"churn": shifted}, partition_key=cell_key("churn"))
    assert not held.success
    assert store.read_manifest(MARKET, "churn").release_id == first

    cell = {"market": MARKET, "model": "churn", "operator": "ana", "reason": "price rise: scores moved"}
    override = release_override_job.execute_in_process(
        run_config={"ops": {"release_under_override": {"config": cell}}},
        instance=instance_with_market,
        resources=resources,
    )
    overridden = store.read_manifest(MARKET, "churn").release_id
    withdrawal = release_withdrawal_job.execute_in_process(
        run_config={"ops": {"withdraw_live_release": {"config": {**cell, "release_id": overridden}}}},
        instance=instance_with_market,
        resources=resources,
    )

    assert override.success
    assert withdrawal.success
    assert overridden != first
    assert store.read_manifest(MARKET, "churn").release_id == first, "the previous release is in force again"
    rows = releases_rows(warehouse, "churn")
    assert list(rows["status"])[-2:] == ["released_under_override", "withdrawn"]
    assert set(rows["operator"].dropna()) == {"ana"}
    observed = [
        e.asset_observation_data.asset_observation.metadata["status"].value
        for e in [*override.all_events, *withdrawal.all_events]
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observed == ["released_under_override", "withdrawn"]
