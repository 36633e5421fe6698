"""Benchmark the prepare stage: training_frame + model_samples core functions on a demo market.

    .venv/bin/python bench/bench_prepare.py --customers 100000 --months 24 --models churn upgrade_premium

The demo market is generated once per size into `<data-dir>/<customers>x<months>/warehouse.duckdb`
(in a child process, so the reported peak RSS is the preparation's own) and reused afterwards.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factory_assets.core.demo_car import DemoConfig, generate_market
from factory_assets.core.prep_frame import build_training_frame
from factory_assets.core.prep_samples import build_model_samples
from factory_assets.core.prep_sql import BUILD_MEMORY_LIMIT
from factory_assets.core.warehouse import Warehouse
from factory_assets.specs_registry import SPECS

log = logging.getLogger("bench_prepare")
MARKET = "bench"


def _generate(path: str, customers: int, months: int, seed: int) -> None:
    warehouse = Warehouse(Path(path))
    config = DemoConfig(markets={MARKET: customers}, months=months, seed=seed)
    for day, frame in generate_market(config, MARKET):
        warehouse.replace_partition(f"car.{MARKET}", frame, {"snapshot_date": day}, "bench")


def ensure_market(path: Path, customers: int, months: int, seed: int) -> float:
    """Generate the demo market unless the warehouse already holds it; return the seconds spent."""
    warehouse = Warehouse(path)
    if warehouse.table_exists(f"car.{MARKET}"):
        return 0.0
    start = time.perf_counter()
    arguments = (str(path), customers, months, seed)
    child = multiprocessing.get_context("spawn").Process(target=_generate, args=arguments)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"generating the demo market into {path} failed (exit code {child.exitcode})")
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["churn", "upgrade_premium"], choices=sorted(SPECS))
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/bench_prepare"))
    parser.add_argument("--memory-limit", default=BUILD_MEMORY_LIMIT, help="DuckDB memory limit, e.g. 1GB")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = args.data_dir / f"{args.customers}x{args.months}" / "warehouse.duckdb"
    generated = ensure_market(path, args.customers, args.months, args.seed)
    warehouse = Warehouse(path)
    car_rows = int(warehouse.query(f"select count(*) as n from car.{MARKET}").iloc[0]["n"])
    log.info("CAR: %d rows (%d customers x %d months), generated in %.1f s", car_rows, args.customers,
             args.months, generated)  # fmt: skip
    log.info("peak RSS before preparing: %.0f MB; DuckDB memory limit %s", peak_rss_mb(), args.memory_limit)
    for model in args.models:
        start = time.perf_counter()
        frame = build_training_frame(warehouse, MARKET, SPECS[model], "bench", memory_limit=args.memory_limit)
        middle, frame_rss = time.perf_counter(), peak_rss_mb()
        samples = build_model_samples(
            warehouse, MARKET, SPECS[model], "bench", memory_limit=args.memory_limit
        )
        end = time.perf_counter()
        rows = sum(samples.plan.totals(s)[0] for s in ("train", "validation", "test"))
        log.info(
            "%-16s training_frame %6.1f s (%d rows, %d candidates, peak RSS %.0f MB) | model_samples %5.1f s "
            "(%d rows, beta %.3f, peak RSS %.0f MB)", model, middle - start, frame.rows, frame.candidates,
            frame_rss, end - middle, rows, samples.plan.beta, peak_rss_mb(),
        )  # fmt: skip


if __name__ == "__main__":
    main()
