"""What a DuckDB connection costs as the warehouse's catalog grows (issue 7: the grid's growth).

    .venv/bin/python bench/bench_catalog.py --write-doc

The factory opens short connections (see `factory_assets/core/warehouse.py`), and DuckDB loads the
whole catalog when a file is opened. A 22 x 18 grid held two prepared tables per cell before
issue 16 (`prep.tf__*`, `prep.samples__*`, ~85 columns each; now shared tables partitioned by
market and model, a constant catalog). This script builds files with a given number
of tables x columns (100 rows each: the cost does not depend on the rows) and times, per
connection: open + `select 1` + close, and open + a one-row write + close (the close checkpoints
the write, rewriting the catalog's metadata). The files are temporary.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common
import duckdb

SHAPES = ((30, 85), (200, 85), (400, 10), (400, 85), (800, 85))
"""(tables, columns): a demo warehouse, ~2, ~5 and ~11 grid markets, and the full 22 x 18 grid."""


def build(path: Path, tables: int, columns: int) -> None:
    """A DuckDB file with `tables` tables of `columns` double columns and 100 rows each."""
    select = ", ".join(f"random() as c{i}" for i in range(columns))
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema prep")
        for t in range(tables):
            con.execute(f"create table prep.t{t} as select {select} from range(100)")
    finally:
        con.close()


def per_connection_ms(path: Path, sql: str, repeats: int) -> float:
    """Median milliseconds of open + `sql` + close."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        con = duckdb.connect(str(path))
        try:
            con.execute(sql)
        finally:
            con.close()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--write-doc", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    loads, rows = [f"start: {common.load_note()}"], []
    with tempfile.TemporaryDirectory(prefix="bench_catalog_") as tmp:
        for tables, columns in SHAPES:
            path = Path(tmp) / f"c{tables}x{columns}.duckdb"
            build(path, tables, columns)
            read = per_connection_ms(path, "select 1", args.repeats)
            write = per_connection_ms(
                path, "create table if not exists w (a int); insert into w values (1)", args.repeats
            )
            rows.append(
                {
                    "tables": tables,
                    "columns_per_table": columns,
                    "catalog_columns": tables * columns,
                    "open_read_close_ms": round(read, 1),
                    "open_write_close_ms": round(write, 1),
                }
            )
            print(rows[-1], flush=True)
            path.unlink()
    loads.append(f"end: {common.load_note()}")
    body = (
        f"Per connection, median of {args.repeats}, DuckDB files of 100-row tables:\n\n"
        f"{common.markdown_table(rows)}\n\nThe cost follows the number of columns in the catalog "
        "more than the number of tables, and not the rows. A cell's stages opened 41 connections, "
        "then 18, now 4 (one session per stage step, see the summary): at the full grid's ~800 "
        "prepared tables, 41 connections were ~7 s per cell."
    )
    print(body)
    if args.write_doc:
        title = "Connection cost vs catalog size (issue 7)"
        common.write_section("catalog", common.section(title, body, loads))


if __name__ == "__main__":
    main()
