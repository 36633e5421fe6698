"""Storage layout: opening the warehouse and reading one cell, from 1 market to 22 (issue 16).

    .venv/bin/python bench/bench_storage.py --write-doc

Builds, in a temporary folder, the catalog of a market as the factory keeps it (its CAR table of
~100 columns, the market's history features, the per-market records keyed by market and model,
and the partitioned per-cell tables of 18 models) for 1, 5 and 22 markets, in two layouts:
`one file` (every market in one DuckDB file, the layout before issue 16) and `file per market`
(`core.warehouse.MarketWarehouses`). Per layout and size it times, median of `--repeats`:
open + read one cell's 1,000 rows + close, and open + write one cell's partition + close.
Then two processes each write 40 partitions of their own market at once, per layout, and count
the lock waits (`core.warehouse.LOCK_WAIT` retries) each met.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import common
import duckdb
import pandas as pd

from factory_assets.core.warehouse import MarketWarehouses, Warehouse

MODELS = 18
RECORD_TABLES = 14
"""ops / registry / release / scores tables keyed by market and model (see docs/data_model.md)."""
CAR_COLUMNS = 100
HISTORY_COLUMNS = 60
ROWS_PER_CELL = 1000


def _columns(prefix: str, n: int) -> str:
    return ", ".join(f"random() as {prefix}{i}" for i in range(n))


def build_market(con: duckdb.DuckDBPyConnection, market: str) -> None:
    """One market's tables in `con` (created if absent; markets share the partitioned tables)."""
    for schema in ("car", "prep", "ops"):
        con.execute(f"create schema if not exists {schema}")
    con.execute(
        f"create table car.{market} as select range as customer_id, "
        f"{_columns('c', CAR_COLUMNS)} from range(100)"
    )
    cells = f"select '{market}' as market, 'm' || (range % {MODELS}) as model, range as customer_id"
    con.execute(
        f"create table if not exists prep.history as select '{market}' as market, range as customer_id, "
        f"{_columns('h', HISTORY_COLUMNS)} from range(0)"
    )
    con.execute(
        f"insert into prep.history select '{market}', range, {_columns('h', HISTORY_COLUMNS)} from range(100)"
    )
    lineage = "'r' as _run_id, now()::timestamp as _written_at"
    con.execute(f"create table if not exists prep.frames as {cells}, 1 as target, {lineage} from range(0)")
    con.execute(f"insert into prep.frames {cells}, 1, {lineage} from range({MODELS * ROWS_PER_CELL})")
    for t in range(RECORD_TABLES):
        con.execute(f"create table if not exists ops.r{t} as {cells}, {_columns('v', 12)} from range(0)")
        con.execute(f"insert into ops.r{t} {cells}, {_columns('v', 12)} from range({MODELS})")


def build(root: Path, markets: int) -> tuple[Warehouse, MarketWarehouses]:
    """Both layouts for `markets` markets under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    one = Warehouse(root / "one.duckdb")
    shards = MarketWarehouses(root / "shards")
    names = [f"m{i:02d}" for i in range(markets)]
    con = duckdb.connect(str(one.path))
    for market in names:
        build_market(con, market)
    con.close()
    for market in names:
        shards.market(market).execute(lambda c, market=market: build_market(c, market))
    return one, shards


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def read_cell(wh: Warehouse) -> pd.DataFrame:
    return wh.query("select * from prep.frames where market = 'm00' and model = 'm1'")


def write_cell(wh: Warehouse) -> None:
    frame = pd.DataFrame({"customer_id": range(ROWS_PER_CELL), "target": 1})
    wh.replace_partition("prep.frames", frame, {"market": "m00", "model": "m1"}, "bench")


def _writer(args: tuple[str, str, int]) -> int:
    """Write `n` partitions of `market` into the file at `path`; the lock waits met."""
    import logging

    from factory_assets.core import warehouse as module

    path, market, n = args
    waits: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if module.LOCK_WAIT in record.getMessage():
                waits.append(record.getMessage())

    module.log.addHandler(Count())
    module.log.setLevel(logging.INFO)
    wh = Warehouse(Path(path))
    frame = pd.DataFrame({"customer_id": range(ROWS_PER_CELL), "target": 1})
    for i in range(n):
        wh.replace_partition("prep.frames", frame, {"market": market, "model": f"m{i % MODELS}"}, "bench")
    return len(waits)


def lock_waits(files: list[Path], n: int) -> list[int]:
    """Two processes writing `n` partitions each at once, each to its file in `files`."""
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        return pool.map(_writer, [(str(f), f"m0{i}", n) for i, f in enumerate(files)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--partitions", type=int, default=40)
    parser.add_argument("--write-doc", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    loads, rows = [f"start: {common.load_note()}"], []
    with tempfile.TemporaryDirectory(prefix="bench_storage_") as tmp:
        for markets in (1, 5, 22):
            one, shards = build(Path(tmp) / f"n{markets}", markets)
            for layout, wh in (("one file", one), ("file per market", shards.market("m00"))):
                rows.append(
                    {
                        "markets": markets,
                        "layout": layout,
                        "open_read_cell_ms": round(median_ms(lambda wh=wh: read_cell(wh), args.repeats), 1),
                        "open_write_cell_ms": round(median_ms(lambda wh=wh: write_cell(wh), args.repeats), 1),
                    }
                )
                print(rows[-1], flush=True)
        one, shards = build(Path(tmp) / "locks", 2)
        shared = lock_waits([one.path, one.path], args.partitions)
        apart = lock_waits([shards.root / "m00.duckdb", shards.root / "m01.duckdb"], args.partitions)
    loads.append(f"end: {common.load_note()}")
    flat = {
        layout: next(r["open_read_cell_ms"] for r in rows if r["markets"] == 22 and r["layout"] == layout)
        / next(r["open_read_cell_ms"] for r in rows if r["markets"] == 1 and r["layout"] == layout)
        for layout in ("one file", "file per market")
    }
    body = (
        f"Per connection, median of {args.repeats}; a market = CAR ({CAR_COLUMNS} columns), history "
        f"({HISTORY_COLUMNS}), frames of {MODELS} models x {ROWS_PER_CELL} rows, {RECORD_TABLES} record "
        f"tables:\n\n{common.markdown_table(rows)}\n\n"
        f"Read cost at 22 markets / 1 market: one file {flat['one file']:.2f}x, file per market "
        f"{flat['file per market']:.2f}x (target <= 1.2x).\n\n"
        f"Two processes writing {args.partitions} partitions each at once: lock waits per process "
        f"{shared} on one file, {apart} with a file per market (target 0)."
    )
    print(body)
    if args.write_doc:
        title = "Storage layout: one file vs a file per market (issue 16)"
        common.write_section("storage", common.section(title, body, loads))


if __name__ == "__main__":
    main()
