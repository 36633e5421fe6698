"""The factory stages in-process on a demo market's row: promote, then drift, retrain and decide.

The real upstream runs first (demo CAR files -> `car_snapshots` -> `training_frame` ->
`model_samples`), on two contiguous models of the row (addon_sports, churn). Run 1 lands ten
months: no champion anywhere, so each cell trains and promotes its first model. Run 2 lands two
more months in which the demo injects drift (viewing down, prices and late payments up): churn's
drift share crosses the spec threshold, a challenger is trained and decided against the champion on
the same out-of-time test, and the first scores' realised performance is measured. Finally the
live artefact is corrupted: scoring fails for that cell and the champion record is untouched.
"""

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from factory_assets import factory, ingest, prepare
from factory_assets.core.model import registry
from factory_assets.core.model.store import ModelStore
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import DemoConfig, add_months, write_landing
from factory_assets.specs_registry import SPECS
from resources import build_resources
from resources.landing import LandingResource

MARKET = "m1"
MODELS = ["addon_sports", "churn"]  # contiguous in the model dimension: one range run covers both
ROW = {
    "dagster/asset_partition_range_start": f"{MARKET}|{MODELS[0]}",
    "dagster/asset_partition_range_end": f"{MARKET}|{MODELS[-1]}",
}
START, FIRST_MONTHS, ALL_MONTHS = dt.date(2025, 1, 1), 10, 12


def land(files: list[Path], staging: Path, landing: Path) -> None:
    for file in files:
        target = landing / file.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)


def run_row(instance: dg.DagsterInstance, resources: dict) -> dg.ExecuteInProcessResult:
    assert dg.materialize(ingest.ASSETS, instance=instance, resources=resources, partition_key=MARKET).success
    assert dg.materialize(prepare.ASSETS, instance=instance, resources=resources, tags=ROW).success
    return dg.materialize(
        [*factory.ASSETS, *factory.CHECKS], instance=instance, resources=resources, tags=ROW
    )


def table(warehouse: Warehouse, sql: str):
    return warehouse.query(sql)


@pytest.fixture(scope="module")
def factory_row(tmp_path_factory):
    root = tmp_path_factory.mktemp("factory")
    paths, staging = FactoryPaths(root / "data"), root / "staging"
    config = DemoConfig(
        markets={MARKET: 2500},
        months=ALL_MONTHS,
        start=START,
        seed=3,
        drift_from=add_months(START, FIRST_MONTHS),
        drift_markets=(MARKET,),
    )
    files = sorted(write_landing(config, staging))
    resources = build_resources(paths.data_dir)
    resources["landing"] = LandingResource(landing_dir=str(paths.landing), settle_seconds=0)
    warehouse = paths.warehouses().union()
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("markets", [MARKET])
        land(files[:FIRST_MONTHS], staging, paths.landing)
        first = run_row(instance, resources)
        after_first = {
            "decisions": registry.decisions(warehouse, MARKET, "churn"),
            "scores": table(warehouse, "select * from scores.scores order by model, customer_id"),
            "drift": table(warehouse, "select * from factory.drift order by model"),
        }
        land(files[FIRST_MONTHS:], staging, paths.landing)
        second = run_row(instance, resources)
        yield {
            "paths": paths,
            "warehouse": warehouse,
            "instance": instance,
            "resources": resources,
            "first": first,
            "second": second,
            "after_first": after_first,
        }


def test_first_run_promotes_a_champion_per_cell(factory_row):
    first, after = factory_row["first"], factory_row["after_first"]
    assert first.success
    assert set(after["drift"]["status"]) == {"no_champion"}, "nothing to compare before the first champion"
    warehouse = factory_row["warehouse"]
    for model in MODELS:
        decisions = registry.decisions(warehouse, MARKET, model)
        first_decision = decisions.iloc[0]
        assert first_decision["outcome"] == "promote", first_decision["reason"]
        assert first_decision["live_version"] == first_decision["challenger_version"]
        assert first_decision["rule_version"] == SPECS[model].replacement.rule_version
        assert json.loads(first_decision["triggers"])[0]["name"] == "no_champion"
        record = registry.model_record(warehouse, MARKET, model, first_decision["live_version"])
        assert record.test_auc > 0.6, f"{model}: test AUC {record.test_auc:.3f}"
        assert ModelStore(factory_row["paths"].models).verify(record.version).is_file()
    scores = after["scores"]
    assert set(scores["model"]) == set(MODELS)
    for model, rows in scores.groupby("model"):
        decision = registry.decisions(warehouse, MARKET, model).iloc[0]
        assert rows["customer_id"].is_unique
        assert set(rows["decision_id"]) == {decision["decision_id"]}, "lineage names the promoting decision"
        assert set(rows["model_version"]) == {decision["live_version"]}
        assert rows["probability"].between(0, 1).all() and sorted(rows["decile"].unique()) == list(
            range(1, 11)
        )
    metadata = first.asset_materializations_for_node("champion_model")[0].metadata
    assert metadata["cells_ok"].value == 2
    assert metadata[f"{MARKET}/churn"].value["outcome"] == "promote"


def test_drift_triggers_a_retrain_and_a_decision_on_the_same_test(factory_row):
    warehouse, second = factory_row["warehouse"], factory_row["second"]
    assert second.success
    drift = table(warehouse, "select * from factory.drift where model = 'churn'").iloc[0]
    threshold = SPECS["churn"].retrain.drift_share
    assert drift["status"] == "compared" and drift["drift_share"] >= threshold, drift["drift_share"]
    assert Path(drift["report_path"]).is_file()
    assert Path(drift["report_path"]).stat().st_size > 10000
    evaluation = registry.latest_evaluation(warehouse, MARKET, "churn")
    assert "drift" in json.loads(evaluation["fired"])
    assert evaluation["outcome"] == "trained"
    decisions = registry.decisions(warehouse, MARKET, "churn")
    assert len(decisions) == 2, decisions[["outcome", "reason"]]
    first, latest = decisions.iloc[0], decisions.iloc[1]
    assert latest["evaluation_id"] == evaluation["evaluation_id"]
    assert latest["champion_version"] == first["live_version"]
    assert latest["challenger_version"] == evaluation["challenger_version"] != first["live_version"]
    assert latest["outcome"] in {"replace", "keep", "veto"}
    assert latest["reason"]
    expected_live = latest["challenger_version"] if latest["outcome"] == "replace" else first["live_version"]
    assert latest["live_version"] == expected_live
    champion_metrics, challenger_metrics = (
        json.loads(latest["champion_metrics"]),
        json.loads(latest["challenger_metrics"]),
    )
    assert champion_metrics["rows"] == challenger_metrics["rows"], "both models measured on the same test"
    assert 0 <= latest["delong_p"] <= 1
    before = latest["decided_at"] - dt.timedelta(microseconds=1)
    assert registry.champion_at(warehouse, MARKET, "churn", before) == first["live_version"]
    assert registry.current_champion(warehouse, MARKET, "churn").version == expected_live


def test_realised_performance_of_the_first_scores(factory_row):
    warehouse = factory_row["warehouse"]
    realised = table(warehouse, "select * from registry.realised_performance where model = 'churn'")
    first_scores = factory_row["after_first"]["scores"].query("model == 'churn'")
    first_live = factory_row["after_first"]["decisions"].iloc[0]["live_version"]
    assert len(realised) == 1
    row = realised.iloc[0]
    assert row["model_version"] == first_live
    assert row["snapshot_date"].date() == first_scores["snapshot_date"].iloc[0].date()
    assert 0.6 < row["auc"] <= 1
    assert row["lift_top_decile"] > 1
    # the old champion's test in run 2 is that same snapshot: its realised AUC is its AUC on that test
    latest = registry.decisions(warehouse, MARKET, "churn").iloc[-1]
    assert row["auc"] == pytest.approx(json.loads(latest["champion_metrics"])["auc"], abs=0.02)


def test_new_scores_carry_the_live_champion(factory_row):
    warehouse = factory_row["warehouse"]
    scores = table(warehouse, "select * from scores.scores where model = 'churn'")
    champion = registry.current_champion(warehouse, MARKET, "churn")
    assert set(scores["model_version"]) == {champion.version}
    assert set(scores["decision_id"]) == {champion.decision_id}
    assert set(scores["run_id"]) == {factory_row["second"].run_id}


def test_corrupt_artefact_fails_the_cell_and_leaves_the_champion(factory_row):
    warehouse, paths = factory_row["warehouse"], factory_row["paths"]
    champion = registry.current_champion(warehouse, MARKET, "churn")
    artefact = ModelStore(paths.models).artefact_path(champion.version)
    original = artefact.read_bytes()
    decisions_before = registry.decisions(warehouse, MARKET, "churn")
    artefact.write_bytes(original[:-100])
    try:
        key = dg.MultiPartitionKey({"market": MARKET, "model": "churn"})
        with pytest.raises(Exception, match=f"{champion.version}.cbm is corrupt"):
            dg.materialize(
                [factory.scores],
                instance=factory_row["instance"],
                resources=factory_row["resources"],
                partition_key=str(key),
            )
    finally:
        artefact.write_bytes(original)
    status = table(
        warehouse, "select status, message from ops.cell_status where model = 'churn' and stage = 'scores'"
    )
    assert status.iloc[0]["status"] == "failed"
    assert "corrupt" in status.iloc[0]["message"]
    after = registry.decisions(warehouse, MARKET, "churn")
    assert after.drop(columns=["_written_at"]).equals(decisions_before.drop(columns=["_written_at"]))
    assert registry.current_champion(warehouse, MARKET, "churn") == champion
