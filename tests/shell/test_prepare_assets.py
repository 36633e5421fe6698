"""The prepare assets in-process: one market's whole row of models in one range run, two cells broken.

The demo CAR is broken on purpose: nobody ever takes the kids add-on (addon_kids has no positives,
so it fails at model_samples), the addon_movies column is missing (addon_movies fails at
training_frame and is skipped at model_samples) and kids_hours is missing everywhere (dropped with
'missing share 1.0', no crash). The other cells must go on.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pytest
from support.prep_frames import cell_rows

from factory_assets import ingest, prepare
from factory_assets.core import cell_status
from factory_assets.core.cell_status import MARKET_WIDE, StageOutcome
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.prep.checks import SampleFacts
from factory_assets.core.warehouse import MarketWarehouses, Warehouse
from factory_assets.demo.car import DemoConfig, generate_market
from factory_assets.partitions import Cell, market_row_range, models_partitions
from resources import build_resources

MODELS = models_partitions.get_partition_keys()
BROKEN = "addon_kids"
NO_PRODUCT = "addon_movies"
GOOD = sorted(set(MODELS) - {BROKEN, NO_PRODUCT})


def load_demo_market(warehouse: Warehouse, market: str, customers: int) -> None:
    """The demo CAR, broken as the module docstring says."""
    for day, frame in generate_market(DemoConfig(markets={market: customers}, months=12, seed=1), market):
        broken = frame.drop(columns=["addon_movies"]).assign(addon_kids=0, kids_hours=float("nan"))
        warehouse.replace_partition(f"car.{market}", broken, {"snapshot_date": day}, "test")


def materialize(instance: dg.DagsterInstance, resources: dict, tags: dict[str, str]) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [*ingest.ASSETS, *prepare.ASSETS, *prepare.CHECKS],
        selection=[a.key for a in prepare.ASSETS],
        instance=instance,
        resources=resources,
        tags=tags,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def row_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dg.ExecuteInJobResult, Warehouse]]:
    """One range run over the whole `uk` row (the expensive part, shared by the tests that read it)."""
    data_dir = tmp_path_factory.mktemp("prepare") / "data"
    wh = FactoryPaths(data_dir).warehouses().market("uk")
    load_demo_market(wh, "uk", 4000)
    cell_status.record(wh, StageOutcome("uk", MARKET_WIDE, "data_checker_1", "ok"), "test")
    keys = market_row_range("uk")
    tags = {"dagster/asset_partition_range_start": keys.start, "dagster/asset_partition_range_end": keys.end}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("markets", ["uk"])
        yield materialize(instance, build_resources(data_dir), tags), wh


def statuses(warehouse: Warehouse, stage: str) -> dict[str, tuple[str, str]]:
    rows = warehouse.query("select model, status, message from ops.cell_status where stage = ?", [stage])
    return {r.model: (r.status, r.message) for r in rows.itertuples()}


def test_one_range_run_prepares_the_row_and_isolates_the_broken_cell(
    row_run: tuple[dg.ExecuteInJobResult, Warehouse],
) -> None:
    result, warehouse = row_run
    assert result.success, "a run with good cells succeeds"
    frames = statuses(warehouse, "training_frame")
    assert frames[NO_PRODUCT][0] == "failed"
    assert "uk/addon_movies: target.product: column 'addon_movies' does not exist" in frames[NO_PRODUCT][1]
    assert {m: s for m, (s, _) in frames.items() if m != NO_PRODUCT} == dict.fromkeys([*GOOD, BROKEN], "ok")
    samples = statuses(warehouse, "model_samples")
    assert samples[NO_PRODUCT][0] == "skipped"
    assert samples[BROKEN][0] == "failed"
    assert "uk/addon_kids: too few positives per split" in samples[BROKEN][1]
    assert {m: samples[m][0] for m in GOOD} == dict.fromkeys(GOOD, "ok")
    for model in GOOD:
        assert cell_rows(warehouse, "prep.samples", "uk", model) > 0
    assert cell_rows(warehouse, "prep.samples", "uk", BROKEN) == 0


def test_materialisations_and_checks_report_the_cells(
    row_run: tuple[dg.ExecuteInJobResult, Warehouse],
) -> None:
    result, _ = row_run
    metadata = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert metadata["training_frame"]["cells_ok"].value == len(MODELS) - 1
    assert metadata["model_samples"]["cells_failed"].value == 1
    assert metadata["model_samples"]["cells_skipped"].value == 1
    churn = metadata["training_frame"]["uk/churn"].value
    assert churn["labelled_snapshots"] == 10
    assert churn["positives"] > 0
    built = [metadata["training_frame"][f"uk/{m}"].value for m in [*GOOD, BROKEN]]
    assert {(c["history_row_action"], c["history_action"]) for c in built} == {("built", "current")}, (
        "the row's history is built once for every cell before the first; no cell computes its own"
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["training_frame_cells_ok"].passed
    assert f"uk/{NO_PRODUCT}" in checks["training_frame_cells_ok"].metadata["not_ok"].value
    assert not checks["model_samples_cells_ok"].passed
    assert f"uk/{BROKEN}" in checks["model_samples_cells_ok"].metadata["not_ok"].value
    for name in ("positives_per_split", "out_of_time", "splits_disjoint"):
        check = checks[f"model_samples_{name}"]
        assert check.passed, check.metadata
        assert "not evaluated" in check.metadata["cells"].value, "the failed cell is listed, not judged"


def test_decisions_catch_the_demo_dirt(row_run: tuple[dg.ExecuteInJobResult, Warehouse]) -> None:
    _, warehouse = row_run
    dropped = warehouse.query(
        "select variable, rule from prep.variable_decisions where model = 'churn' and decision = 'drop'"
    )
    rules = dict(zip(dropped.variable, dropped.rule, strict=True))
    assert rules["country_code"] == "dominant_share"
    assert rules["account_ref"] == "id_like"
    assert rules["cancel_request_flag"] == "leakage_auc"
    assert rules["base_tier"] == "target_product"
    empty = warehouse.query(
        "select reason from prep.variable_decisions where variable = 'kids_hours' and decision = 'drop'"
    )
    assert len(empty) == 5 and empty.reason.str.startswith("missing share 1.0").all(), "one per built cell"


def test_a_market_without_its_gate_is_skipped(
    warehouses: MarketWarehouses, resources: dict, instance: dg.DagsterInstance
) -> None:
    warehouse = warehouses.market("fr")
    instance.add_dynamic_partitions("markets", ["fr"])
    cell_status.record(
        warehouse, StageOutcome("fr", MARKET_WIDE, "data_checker_1", "failed", "contract"), "t"
    )
    tags = {"dagster/partition": str(Cell("fr", "churn").key)}
    result = materialize(instance, resources, tags)
    assert not result.success, "a run whose only cell is held back fails loudly"
    status = statuses(warehouse, "training_frame")["churn"]
    assert status[0] == "skipped"
    assert "data_checker_1" in status[1]


def test_the_graph_is_wired_as_designed() -> None:
    keys = {a.key.to_user_string() for a in prepare.ASSETS}
    assert keys == {"training_frame", "model_samples"}
    frame, samples = prepare.ASSETS
    assert {k.to_user_string() for k in frame.dependency_keys} == {"car_snapshots"}
    assert {k.to_user_string() for k in samples.dependency_keys} == {"training_frame"}
    checks = [*prepare.CHECKS, *prepare.ASSETS]  # the stages emit their `_cells_ok` checks themselves
    names = sorted(key.name for check in checks for key in check.check_keys)
    assert names == sorted([
        "training_frame_cells_ok", "model_samples_cells_ok", "model_samples_positives_per_split",
        "model_samples_out_of_time", "model_samples_splits_disjoint",
    ])  # fmt: skip
    assert frame.backfill_policy == dg.BackfillPolicy.single_run()
    assert pd.api.types.is_list_like(prepare.CHECKS)


def facts(**changes: object) -> SampleFacts:
    base = {
        "cell": "uk/churn",
        "rows": {"train": 800, "validation": 200, "test": 1000},
        "positives": {"train": 160, "validation": 40, "test": 30},
        "first": {s: pd.Timestamp("2024-01-01") for s in ("train", "validation")}
        | {"test": pd.Timestamp("2024-11-01")},
        "last": {s: pd.Timestamp("2024-10-01") for s in ("train", "validation")}
        | {"test": pd.Timestamp("2024-11-01")},
        "duplicated_keys": 0,
        "cross_sectional": False,
    }
    return SampleFacts(**{**base, **changes})


def test_check_findings_name_what_is_wrong() -> None:
    cell = Cell("uk", "churn")
    assert prepare._positives(facts(), cell) is None
    assert prepare._ordering(facts(), cell) is None
    assert prepare._disjoint(facts(), cell) is None
    short = facts(positives={"train": 160, "validation": 40, "test": 5})
    assert "fewer than 20 positives in ['test']" in prepare._positives(short, cell)
    late = facts(
        last={"train": pd.Timestamp("2024-11-01"), "validation": None, "test": pd.Timestamp("2024-11-01")}
    )
    assert "train/validation reach 2024-11-01" in prepare._ordering(late, cell)
    assert prepare._ordering(facts(last=late.last, cross_sectional=True), cell) is None
    assert "3 customer-snapshots" in prepare._disjoint(facts(duplicated_keys=3), cell)
