"""The per-cell gate: a failing cell is recorded and reported without holding back its row."""

import dagster as dg
import pytest

from factory_assets.cellrun import cells_ok_spec, run_cells
from factory_assets.core import cell_status
from factory_assets.core.cell_status import MARKET_WIDE, StageOutcome
from factory_assets.core.warehouse import Warehouse
from factory_assets.jobs import row_tags
from factory_assets.partitions import Cell, cell_partitions, decode_cell, models_partitions
from resources.warehouse import WarehouseResource

MODELS = models_partitions.get_partition_keys()
BROKEN = MODELS[1]


@dg.asset(
    partitions_def=cell_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[cells_ok_spec("toy_stage", "toy_stage")],
)
def toy_stage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    def work(cell: Cell) -> dict[str, object]:
        if cell.model == BROKEN:
            raise ValueError(f"no positives in {cell}")
        return {"rows": 10}

    return run_cells(context, warehouse.get(), "toy_stage", ["data_checker_1"], work)


def gate(warehouse, market: str, status: str) -> None:
    cell_status.record(warehouse, StageOutcome(market, MARKET_WIDE, "data_checker_1", status, "x"), "t")


def test_range_run_keeps_good_cells_and_names_the_bad_one(instance, resources, warehouse):
    instance.add_dynamic_partitions("markets", ["uk"])
    gate(warehouse, "uk", "ok")
    result = dg.materialize(
        [toy_stage],
        instance=instance,
        resources=resources,
        tags=row_tags("uk"),
    )
    assert result.success
    statuses = warehouse.query("select model, status, message from ops.cell_status where stage = 'toy_stage'")
    by_model = dict(zip(statuses["model"], statuses["status"], strict=True))
    assert by_model[BROKEN] == "failed"
    assert all(by_model[m] == "ok" for m in MODELS if m != BROKEN)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    assert f"uk/{BROKEN}" in check.metadata["not_ok"].value
    materialization = result.asset_materializations_for_node("toy_stage")[0]
    assert materialization.metadata["cells_failed"].value == 1


def test_single_cell_failure_fails_the_run_with_the_cause(instance, resources, warehouse):
    instance.add_dynamic_partitions("markets", ["uk"])
    gate(warehouse, "uk", "ok")
    key = str(Cell("uk", BROKEN).key)
    with pytest.raises(Exception, match=f"no positives in uk/{BROKEN}"):
        dg.materialize([toy_stage], instance=instance, resources=resources, partition_key=key)


def test_market_gate_skips_every_cell(instance, resources, warehouses):
    instance.add_dynamic_partitions("markets", ["de"])
    gate(warehouses.market("de"), "de", "failed")
    with pytest.raises(Exception, match="upstream stage 'data_checker_1' is failed"):
        dg.materialize([toy_stage], instance=instance, resources=resources, tags=row_tags("de"))


def test_decode_cell_round_trip():
    cell = Cell("uk", MODELS[0])
    assert decode_cell(cell.key) == cell
    assert decode_cell(str(cell.key)) == cell


@dg.asset(
    partitions_def=cell_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[cells_ok_spec("released_stage", "released_stage")],
)
def released_stage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    warehouses = warehouse.get()

    def work(cell: Cell) -> dict[str, object]:
        wh = warehouses.market(cell.market)
        rows = int(wh.query("select count(*) as n from ops.cell_status")["n"].iloc[0])
        if cell.model == BROKEN:
            with wh.released():  # fails where the stage's connection is closed: the next cell needs one
                raise ValueError(f"fit failed in {cell}")
        return {"rows": rows}

    return run_cells(context, warehouses, "released_stage", ["data_checker_1"], work)


def test_a_stage_shares_one_connection_across_its_cells_and_survives_a_failure(
    instance, resources, warehouse, monkeypatch
):
    instance.add_dynamic_partitions("markets", ["uk"])
    gate(warehouse, "uk", "ok")
    opened = []
    real = Warehouse._connect_with_retry

    def counting(self: Warehouse):
        opened.append(self.path)
        return real(self)

    monkeypatch.setattr(Warehouse, "_connect_with_retry", counting)
    result = dg.materialize([released_stage], instance=instance, resources=resources, tags=row_tags("uk"))
    assert result.success
    # the stage's session, then a fresh one after the failed cell; the gate, the work's reads and
    # every cell's record share them
    assert len(opened) == 2
    monkeypatch.undo()
    statuses = warehouse.query("select model, status from ops.cell_status where stage = 'released_stage'")
    by_model = dict(zip(statuses["model"], statuses["status"], strict=True))
    assert by_model == {m: "failed" if m == BROKEN else "ok" for m in MODELS}


def test_decode_cell_refuses_an_invalid_market_naming_it_and_the_rule():
    with pytest.raises(ValueError, match=r"market 'UK' is not a valid market code: it must be a lower-case"):
        decode_cell("UK|churn")
