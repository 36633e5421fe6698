"""The warehouse: atomic per-partition replace, lineage, lock retries across processes."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from factory_assets.core.warehouse import (
    LOCK_WAIT,
    MarketWarehouses,
    PartitionCopy,
    Warehouse,
    WarehouseLockedError,
    check_identifier,
)


def frame(values: list[int], month: str) -> pd.DataFrame:
    return pd.DataFrame({"snapshot_date": pd.Timestamp(month), "value": values})


def test_replace_owns_exactly_its_partition(warehouse):
    warehouse.replace_partition("car.uk", frame([1, 2], "2024-01-01"), {"snapshot_date": "2024-01-01"}, "r1")
    warehouse.replace_partition("car.uk", frame([3], "2024-02-01"), {"snapshot_date": "2024-02-01"}, "r1")
    warehouse.replace_partition("car.uk", frame([9], "2024-01-01"), {"snapshot_date": "2024-01-01"}, "r2")
    rows = warehouse.query("select snapshot_date, value, _run_id from car.uk order by snapshot_date")
    assert rows["value"].tolist() == [9, 3]
    assert rows["_run_id"].tolist() == ["r2", "r1"]
    assert "_written_at" in warehouse.query("select * from car.uk").columns


def test_failed_write_keeps_previous_rows(warehouse):
    warehouse.replace_partition("t.x", frame([1, 2], "2024-01-01"), {"snapshot_date": "2024-01-01"}, "r1")
    bad = pd.DataFrame({"snapshot_date": [pd.Timestamp("2024-01-01")], "value": ["not a number"]})
    with pytest.raises(duckdb.Error):
        warehouse.replace_partition("t.x", bad, {"snapshot_date": "2024-01-01"}, "r2")
    assert warehouse.query("select value from t.x order by value")["value"].tolist() == [1, 2]


def _scores(values: list[float], month: str) -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b"][: len(values)], "month": pd.Timestamp(month), "score": values})


def _write_with_history(warehouse: Warehouse, data: pd.DataFrame, month: str, run: str) -> None:
    history = PartitionCopy("t.history", ["id", "month", "score", "cell"], {"cell": "uk", "month": month})
    warehouse.replace_partition("t.latest", data, {"cell": "uk"}, run, copies=[history])


def test_a_copy_replaces_its_own_partition_in_the_same_write(warehouse):
    _write_with_history(warehouse, _scores([0.1, 0.2], "2024-01-01"), "2024-01-01", "r1")
    _write_with_history(warehouse, _scores([0.3], "2024-02-01"), "2024-02-01", "r2")
    _write_with_history(warehouse, _scores([0.4], "2024-02-01"), "2024-02-01", "r3")
    assert warehouse.query("select score from t.latest")["score"].tolist() == [0.4]
    history = warehouse.query("select month, score, cell, _run_id from t.history order by month, score")
    assert history["score"].tolist() == [0.1, 0.2, 0.4]
    assert history["_run_id"].tolist() == ["r1", "r1", "r3"]
    assert set(history["cell"]) == {"uk"}


def test_a_failed_copy_rolls_back_the_whole_write(warehouse):
    _write_with_history(warehouse, _scores([0.1, 0.2], "2024-01-01"), "2024-01-01", "r1")
    for change in ("add column extra integer not null default 0", "alter column extra drop default"):
        warehouse.execute(lambda con, c=change: con.execute(f"alter table t.history {c}"))
    with pytest.raises(duckdb.Error):
        _write_with_history(warehouse, _scores([0.9], "2024-01-01"), "2024-01-01", "r2")
    assert warehouse.query("select score from t.latest order by 1")["score"].tolist() == [0.1, 0.2]
    assert warehouse.query("select _run_id from t.history")["_run_id"].unique().tolist() == ["r1"]


def test_a_copy_must_carry_its_partition_columns():
    with pytest.raises(ValueError, match=r"partition column\(s\) \['month'\] are not copied"):
        PartitionCopy("t.history", ["id", "cell"], {"cell": "uk", "month": "2024-01-01"}).check()


def test_identifiers_are_checked():
    assert check_identifier("prep.tf__uk__churn") == "prep.tf__uk__churn"
    for bad in ["car.uk; drop table x", "Car.UK", "a.b.c", "1abc"]:
        with pytest.raises(ValueError, match="not a valid warehouse identifier"):
            check_identifier(bad)


def _write_many(path: str, market: str, count: int) -> None:
    warehouse = Warehouse(Path(path), retries=40, base_delay=0.01, max_delay=0.2)
    for month in range(1, count + 1):
        data = pd.DataFrame({"market": [market] * 50, "month": month, "value": range(50)})
        warehouse.replace_partition("t.rows", data, {"market": market, "month": month}, market)


def test_two_processes_writing_at_once_both_succeed(tmp_path):
    path = str(tmp_path / "w.duckdb")
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_write_many, args=(path, m, 15)) for m in ("uk", "de")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    counts = Warehouse(Path(path)).query("select market, count(*) n from t.rows group by 1 order by 1")
    assert counts.to_dict("list") == {"market": ["de", "uk"], "n": [750, 750]}


def _hold_lock(path: str, ready, release) -> None:
    con = duckdb.connect(path)
    ready.set()
    release.wait(30)
    con.close()


def test_persistent_lock_gives_a_clear_error(tmp_path):
    path = tmp_path / "w.duckdb"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        warehouse = Warehouse(path, retries=2, base_delay=0.01)
        with pytest.raises(WarehouseLockedError, match="still locked after 2 retries"):
            warehouse.query("select 1")
    finally:
        release.set()
        holder.join(30)


def _try_query(path: str, out) -> None:
    try:
        Warehouse(Path(path), retries=1, base_delay=0.01).query("select 1")
        out.put("opened")
    except WarehouseLockedError:
        out.put("locked")


def test_a_session_shares_one_connection_and_releases_the_file_when_it_ends(warehouse):
    create_temp = "create temp table scratch as select 42 as answer"  # temp tables live per connection
    with warehouse.session():
        warehouse.execute(lambda con: con.execute(create_temp))
        with warehouse.session():  # nested: still the same connection
            assert warehouse.query("select answer from scratch")["answer"].tolist() == [42]
        warehouse.replace_partition("t.x", frame([1], "2024-01-01"), {"snapshot_date": "2024-01-01"}, "r1")
        assert warehouse.query("select answer from scratch")["answer"].tolist() == [42]
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        other = ctx.Process(target=_try_query, args=(str(warehouse.path), out))
        other.start()
        assert out.get(timeout=60) == "locked", "a session holds DuckDB's file lock"
        other.join(30)
    with pytest.raises(duckdb.CatalogException, match="scratch"):
        warehouse.query("select answer from scratch")
    assert warehouse.query("select value from t.x")["value"].tolist() == [1], "writes in a session commit"
    other = ctx.Process(target=_try_query, args=(str(warehouse.path), out))
    other.start()
    assert out.get(timeout=60) == "opened"
    other.join(30)


def test_released_closes_the_session_connection_for_long_work_and_reopens_it(warehouse):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    with warehouse.session():
        warehouse.execute(lambda con: con.execute("create temp table scratch as select 1 as one"))
        with warehouse.released():
            other = ctx.Process(target=_try_query, args=(str(warehouse.path), out))
            other.start()
            assert out.get(timeout=60) == "opened", "no lock is held while released"
            other.join(30)
            assert warehouse.query("select 2 as two")["two"].tolist() == [2]
        with pytest.raises(duckdb.CatalogException, match="scratch"):
            warehouse.query("select one from scratch")  # a new connection: the temp table is gone
        warehouse.execute(lambda con: con.execute("create temp table scratch as select 3 as three"))
        assert warehouse.query("select three from scratch")["three"].tolist() == [3], "shared again"
    with warehouse.released():  # outside a session: nothing to release
        assert warehouse.query("select 4 as four")["four"].tolist() == [4]


def test_a_partly_read_result_does_not_block_the_next_call_in_a_session(warehouse):
    with warehouse.session():
        first = warehouse.execute(lambda con: con.execute("select * from range(5)").fetchone())
        warehouse.replace_partition("t.x", frame([1], "2024-01-01"), {"snapshot_date": "2024-01-01"}, "r1")
        assert first == (0,)
        assert warehouse.query("select value from t.x")["value"].tolist() == [1]


def test_renew_session_replaces_the_connection_and_a_failed_release_is_recovered(warehouse):
    scratch = "create temp table scratch as select 1 as one"  # temp tables live per connection
    with warehouse.session():
        warehouse.execute(lambda con: con.execute(scratch))
        warehouse.renew_session()
        with pytest.raises(duckdb.CatalogException, match="scratch"):
            warehouse.query("select one from scratch")
        with pytest.raises(RuntimeError, match="fit failed"), warehouse.released():
            raise RuntimeError("fit failed")
        with warehouse.session():  # the outer session lost its connection: a nested one reopens it
            warehouse.execute(lambda con: con.execute(scratch))
        assert warehouse.query("select one from scratch")["one"].tolist() == [1], "shared, still open"
    warehouse.renew_session()  # outside a session: nothing to renew
    with pytest.raises(duckdb.CatalogException, match="scratch"):
        warehouse.query("select one from scratch")


def test_each_market_writes_its_own_file_and_the_union_reads_them_as_one(tmp_path):
    warehouses = MarketWarehouses(tmp_path / "warehouse")
    union = warehouses.union()  # made before any write: it lists the files at each connection
    assert not union.table_exists("ops.rows")
    warehouses.market("uk").replace_partition("ops.rows", pd.DataFrame({"v": [1, 2]}), {"market": "uk"}, "r")
    extra = pd.DataFrame({"v": [3], "w": ["only in de"]})
    warehouses.market("de").replace_partition("ops.rows", extra, {"market": "de"}, "r")
    assert warehouses.markets() == ["de", "uk"]
    rows = union.query("select market, v, w from ops.rows order by v")
    assert rows["market"].tolist() == ["uk", "uk", "de"]
    assert rows["w"].isna().tolist() == [True, True, False], "a column missing in one file reads as NULL"
    assert warehouses.union(["uk"]).query("select count(*) as n from ops.rows")["n"].iloc[0] == 2
    with pytest.raises(duckdb.Error):
        union.execute(lambda con: con.execute("insert into ops.rows (market, v) values ('uk', 9)"))


def test_a_market_name_that_cannot_be_a_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a valid market"):
        MarketWarehouses(tmp_path).market("../etc")


def test_the_union_waits_for_a_market_being_written_and_logs_each_wait(tmp_path, caplog):
    warehouses = MarketWarehouses(tmp_path / "warehouse", retries=2)
    warehouses.market("uk").replace_partition("ops.rows", pd.DataFrame({"v": [1]}), {"market": "uk"}, "r")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path / "warehouse" / "uk.duckdb"), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        locked = pytest.raises(WarehouseLockedError, match=r"uk\.duckdb still locked after 2 retries")
        with caplog.at_level("INFO", logger="factory_assets.core.warehouse"), locked:
            warehouses.union().query("select * from ops.rows")
        assert len([r for r in caplog.records if LOCK_WAIT in r.getMessage()]) == 2
    finally:
        release.set()
        holder.join(30)
