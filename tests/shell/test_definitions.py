"""The code location loads, and its graph is the one we expect (a typo'd dependency shows here)."""

import dagster as dg

from factory_assets.definitions import defs
from factory_assets.partitions import cell_partitions, markets_partitions

STAGES = [
    "car_snapshots",
    "training_frame",
    "model_samples",
    "drift_report",
    "challenger_model",
    "champion_model",
    "scores",
    "released_scores",
    "factory_status",
]
UPSTREAM = {
    "training_frame": {"car_snapshots"},
    "model_samples": {"training_frame"},
    "drift_report": {"model_samples"},
    "challenger_model": {"drift_report"},
    "champion_model": {"challenger_model"},
    "scores": {"champion_model"},
    "released_scores": {"scores"},
    "factory_status": {"released_scores"},
}


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_stage_exists_with_its_dependencies_and_partitions():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(STAGES)
    for asset, parents in UPSTREAM.items():
        node = graph.get(dg.AssetKey(asset))
        assert {p.to_user_string() for p in node.parent_keys} >= parents, asset
    assert graph.get(dg.AssetKey("car_snapshots")).partitions_def == markets_partitions
    for asset in STAGES[1:-1]:
        assert graph.get(dg.AssetKey(asset)).partitions_def == cell_partitions, asset
        assert graph.get(dg.AssetKey(asset)).backfill_policy == dg.BackfillPolicy.single_run(), asset


def test_both_data_checkers_exist_and_block():
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    car_checks = {name for asset, name in checks if asset == "car_snapshots"}
    score_checks = {name for asset, name in checks if asset == "scores"}
    assert len(car_checks) >= 6, car_checks
    assert len(score_checks) >= 5, score_checks
    blocking = [c for c in graph.asset_check_keys if graph.get_check_spec(c).blocking]
    assert {c.asset_key.to_user_string() for c in blocking} >= {"car_snapshots"}


def test_sensors_schedules_and_jobs():
    sensors = {s.name for s in defs.sensors}
    assert {
        "new_car_sensor",
        "car_gate_sensor",
        "status_refresh_on_success_sensor",
        "status_refresh_on_failure_sensor",
    } <= sensors
    assert {s.name for s in defs.schedules} == {"daily_scoring_schedule", "weekly_retrain_schedule"}
    for job in ("car_ingest_job", "factory_row_job", "retrain_job", "scoring_job", "factory_status_job"):
        assert defs.resolve_job_def(job) is not None
