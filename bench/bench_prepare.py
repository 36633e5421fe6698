"""Preparation scale (issues 3, 16): training_frame + model_samples core functions on one demo market.

    .venv/bin/python bench/bench_prepare.py --sizes 100000 300000 --months 24 --models churn --write-doc
    .venv/bin/python bench/bench_prepare.py --sizes 50000 --models churn addon_kids ... --history union
    .venv/bin/python bench/bench_prepare.py --sizes 1000000 --spec-copies 18 --models all --row --write-doc

`--row` (issue 16) prepares, per size and each from a warehouse without prepared data, first one
model alone (`--one`, churn: the spec with the most history features; its own history windows,
frame and samples: what preparing one model cost before history was shared) and then the market's
whole row (every model of `--models`; history as `--history` says), and reports the ratio.
`--spec-copies N` runs against a deployment of N specs: the demo's six, then seeded copies of them
(`<spec>_s<k>`), as `bench_grid.py` builds its 18 models.

For each size the demo market is generated once into `<data-dir>/<customers>x<months>/warehouse.duckdb`
and reused afterwards: every snapshot goes through the ingest's own `prepare_snapshot` (contract
validation, date types, `_source_file`) into Parquet, then into `car.bench` in one DuckDB statement
(the per-snapshot `replace_partition` of the real ingest is far slower and is not what is measured).
Each size is then prepared in a fresh child process, so its peak RSS is its own; the growth exponent
is the log-log slope of time (and of peak RSS) over the sizes run. The market's history features
are built once for the union of the models first (`--history union`, the default, a `history` row of
its own: `build_row_history`, what the `training_frame` step does before a row's cells), or by the
first model's `training_frame` and extended by the later ones (`--history per-cell`, what each
cell's frame does alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

import common

from factory_assets.core.car.ingest import prepare_snapshot
from factory_assets.core.car.inputs import SnapshotInput
from factory_assets.core.contract import load_contract
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.history import build_row_history
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.prep.sql import BUILD_MEMORY_LIMIT
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import DemoConfig, generate_market
from factory_assets.specs_registry import SPECS

log = logging.getLogger("bench_prepare")
MARKET = "bench"
COPIES_ENV = "BENCH_SPEC_COPIES"
ROW_HISTORY = {
    "union": "builds the history once for the union of the specs (`build_row_history`, as the step does)",
    "per-cell": "builds the history with its first model and extends it with each later one asking for more",
}


def _generate(path: str, customers: int, months: int, seed: int) -> None:
    contract = load_contract()
    config = DemoConfig(markets={MARKET: customers}, months=months, seed=seed)
    with tempfile.TemporaryDirectory(dir=Path(path).parent) as tmp:
        for day, frame in generate_market(config, MARKET):
            item = SnapshotInput(MARKET, day, f"car_{day}.parquet", lambda: "", lambda f=frame: f)
            prepare_snapshot(frame, contract, item, today=dt.date(2100, 1, 1)).to_parquet(
                Path(tmp) / f"car_{day}.parquet", index=False
            )

        def load(con) -> None:
            con.execute("create schema if not exists car")
            con.execute(
                f"create table car.{MARKET} as select *, 'bench' as _run_id, "
                f"current_timestamp::timestamp as _written_at from read_parquet('{tmp}/*.parquet')"
            )

        Warehouse(Path(path)).execute(load)


def ensure_market(path: Path, customers: int, months: int, seed: int) -> float:
    """Generate the demo market unless the warehouse already holds it; return the seconds spent."""
    if path.exists() and Warehouse(path).table_exists(f"car.{MARKET}"):
        return 0.0
    if path.parent.exists():
        shutil.rmtree(path.parent)
    path.parent.mkdir(parents=True)
    start = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(
        target=_generate, args=(str(path), customers, months, seed)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"generating the demo market into {path} failed (exit code {child.exitcode})")
    return time.perf_counter() - start


def _history_row(warehouse: Warehouse, models: list[str], memory_limit: str) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    row = build_row_history(warehouse, MARKET, [SPECS[m] for m in models], "bench", memory_limit)
    history = row.summary
    return {
        "model": "history",
        "training_frame_s": round(time.perf_counter() - start, 1),
        "training_frame_cpu_s": round(time.process_time() - cpu, 1),
        "frame_rows": "",
        "candidates": history.features,
        "history": f"{history.action} (+{len(history.computed)})",
        "peak_rss_after_frame_mb": round(common.peak_rss_mb()),
        "model_samples_s": "",
        "model_samples_cpu_s": "",
        "sample_rows": "",
        "peak_rss_after_samples_mb": "",
    }


def _reset(warehouse: Warehouse) -> None:
    """Drop every prepared table (the `prep` schema), so that a run starts from the CAR alone."""
    warehouse.execute(lambda con: con.execute("drop schema if exists prep cascade"))


def _prepare(path: str, models: list[str], memory_limit: str, history: str, out) -> None:
    warehouse = Warehouse(Path(path))
    _reset(warehouse)
    rows = [_history_row(warehouse, models, memory_limit)] if history == "union" else []
    for model in models:
        start, cpu_start = time.perf_counter(), time.process_time()
        frame = build_training_frame(warehouse, MARKET, SPECS[model], "bench", memory_limit=memory_limit)
        middle, cpu_middle, frame_rss = time.perf_counter(), time.process_time(), common.peak_rss_mb()
        samples = build_model_samples(warehouse, MARKET, SPECS[model], "bench", memory_limit=memory_limit)
        end, cpu_end = time.perf_counter(), time.process_time()
        sample_rows = sum(samples.plan.totals(s)[0] for s in ("train", "validation", "test"))
        rows.append(
            {
                "model": model,
                "training_frame_s": round(middle - start, 1),
                "training_frame_cpu_s": round(cpu_middle - cpu_start, 1),
                "frame_rows": frame.rows,
                "candidates": frame.candidates,
                "history": f"{frame.history.action} (+{len(frame.history.computed)})",
                "peak_rss_after_frame_mb": round(frame_rss),
                "model_samples_s": round(end - middle, 1),
                "model_samples_cpu_s": round(cpu_end - cpu_middle, 1),
                "sample_rows": sample_rows,
                "peak_rss_after_samples_mb": round(common.peak_rss_mb()),
            }
        )
    out.put(rows)


def prepare_size(path: Path, models: list[str], memory_limit: str, history: str) -> list[dict]:
    """Prepare every model of one size in a fresh child process; its rows of figures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_prepare, args=(str(path), models, memory_limit, history, queue))
    child.start()
    while True:  # poll, so a child that dies without answering does not hang the parent
        try:
            rows = queue.get(timeout=2)
            break
        except Empty:
            if not child.is_alive():
                raise RuntimeError(f"preparing {path} failed (exit code {child.exitcode})") from None
    child.join()
    return rows


def _exponents(results: list[dict[str, object]], models: list[str]) -> list[dict[str, object]]:
    found = []
    for model in models:
        mine = [r for r in results if r["model"] == model]
        sizes = [float(r["customers"]) for r in mine]
        found.append(
            {
                "model": model,
                "sizes": " / ".join(f"{int(s):,}" for s in sizes),
                **{
                    f"{name}_exponent": round(common.growth_exponent(sizes, [r[column] for r in mine]), 2)
                    for name, column in (
                        ("training_frame_time", "training_frame_s"),
                        ("model_samples_time", "model_samples_s"),
                        ("peak_rss", "peak_rss_after_samples_mb"),
                    )
                },
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000], help="customers per run")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--models", nargs="+", default=["churn"], choices=["all", *sorted(SPECS)],
        help="model specs to prepare; `all` = every spec of the deployment",
    )  # fmt: skip
    parser.add_argument("--spec-copies", type=int, help="N specs: the demo's six + seeded copies")
    parser.add_argument(
        "--row", action="store_true",
        help="prepare --one alone, then the whole row, each from scratch, and report the ratio",
    )  # fmt: skip
    parser.add_argument("--one", default="churn", help="with --row: the model prepared alone")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "hb_bench" / "prepare")
    parser.add_argument("--memory-limit", default=BUILD_MEMORY_LIMIT, help="DuckDB memory limit, e.g. 1GB")
    parser.add_argument("--write-doc", action="store_true", help="replace this section of docs/benchmarks.md")
    parser.add_argument(
        "--history", choices=("per-cell", "union"), default="union",
        help="union: build it once first, as the step does; per-cell: each training_frame extends it",
    )  # fmt: skip
    args = parser.parse_args()
    if args.spec_copies and os.environ.get(COPIES_ENV) != str(args.spec_copies):
        _rerun_with_copies(args.data_dir, args.spec_copies)
    if args.models == ["all"]:
        args.models = sorted(SPECS)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.row:
        run_rows(args)
        return
    results, loads = [], []
    for customers in args.sizes:
        path = args.data_dir / f"{customers}x{args.months}" / "warehouse.duckdb"
        generated = ensure_market(path, customers, args.months, args.seed)
        car_rows = int(Warehouse(path).query(f"select count(*) as n from car.{MARKET}").iloc[0]["n"])
        log.info("%d customers: CAR %d rows, generated in %.0f s", customers, car_rows, generated)
        loads.append(f"{customers:,} customers, before: {common.load_note()}")
        for row in prepare_size(path, args.models, args.memory_limit, args.history):
            results.append({"customers": customers, "car_rows": car_rows, **row})
            log.info("%s", results[-1])
        loads.append(f"{customers:,} customers, after: {common.load_note()}")
        report(args, results, loads)  # after every size, so a run stopped early keeps what it measured


def _rerun_with_copies(data_dir: Path, copies: int) -> None:
    """Run this script again on a deployment of `copies` specs (FACTORY_PROJECT_DIR is read at import)."""
    project = data_dir / f"deployment_{copies}_specs"
    if project.exists():
        shutil.rmtree(project)
    project.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(common.REPO_ROOT / "config", project / "config")
    (project / "model_specs").mkdir()
    common.write_specs(project / "model_specs", copies)
    os.environ.update({"FACTORY_PROJECT_DIR": str(project), COPIES_ENV: str(copies)})
    os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:]])


def _total(rows: list[dict], column: str) -> float:
    return sum(float(r[column]) for r in rows if r[column] != "")


def run_rows(args: argparse.Namespace) -> None:
    """Per size: `--one` alone, then the whole row, each from scratch; the ratio of their times."""
    results, summary, loads = [], [], []
    one = [args.one]
    for customers in args.sizes:
        path = args.data_dir / f"{customers}x{args.months}" / "warehouse.duckdb"
        generated = ensure_market(path, customers, args.months, args.seed)
        log.info("%d customers: generated in %.0f s", customers, generated)
        loads.append(f"{customers:,} customers, before: {common.load_note()}")
        alone = prepare_size(path, one, args.memory_limit, "per-cell")
        loads.append(f"{customers:,} customers, after {one[0]} alone: {common.load_note()}")
        row = prepare_size(path, args.models, args.memory_limit, args.history)
        loads.append(f"{customers:,} customers, after the row: {common.load_note()}")
        for label, rows in ((f"{one[0]} alone", alone), (f"row of {len(args.models)}", row)):
            results += [{"customers": customers, "run": label, **r} for r in rows]
        alone_s = _total(alone, "training_frame_s") + _total(alone, "model_samples_s")
        row_s = _total(row, "training_frame_s") + _total(row, "model_samples_s")
        summary.append(
            {
                "customers": customers,
                "models": len(args.models),
                "one_model_s": round(alone_s),
                "row_s": round(row_s),
                "row_over_one": round(row_s / alone_s, 2),
                "peak_rss_one_mb": max(r["peak_rss_after_frame_mb"] for r in alone),
                "peak_rss_row_mb": max(
                    max(r["peak_rss_after_frame_mb"], r["peak_rss_after_samples_mb"] or 0) for r in row
                ),
            }
        )
        log.info("%s", summary[-1])
        report_rows(args, results, summary, loads)


def report_rows(args: argparse.Namespace, results: list[dict], summary: list[dict], loads: list[str]) -> None:
    """Print the row comparison and, with --write-doc, replace its section."""
    table, totals = common.markdown_table(results), common.markdown_table(summary)
    body = (
        f"One market, {args.months} months, {len(args.models)} model specs ({', '.join(args.models)}), "
        f"DuckDB memory limit {args.memory_limit}, each run in a fresh process from a warehouse without "
        f"prepared data (peak RSS = that process's `ru_maxrss`). `{args.one} alone` builds its "
        f"own history windows, frame and samples (what one model's preparation cost before the "
        f"history was shared); the row {ROW_HISTORY[args.history]} (`--history {args.history}`), "
        f"then every model's frame and samples.\n\n{totals}\n\n"
        f"Per step:\n\n{table}"
    )
    _publish(args, "prepare_row", "Preparing a market's whole row (issue 16)", body, loads)


def _publish(args: argparse.Namespace, name: str, title: str, body: str, loads: list[str]) -> None:
    print(body, flush=True)
    if args.write_doc:
        common.write_section(name, common.section(title, body, loads))


def report(args: argparse.Namespace, results: list[dict[str, object]], loads: list[str]) -> None:
    """Print the figures so far and, with --write-doc, replace the section."""
    table = common.markdown_table(results)
    exponents = common.markdown_table(_exponents(results, args.models))
    body = (
        f"One market, {args.months} months, model(s) {', '.join(args.models)}, DuckDB memory limit "
        f"{args.memory_limit} (the stage's `BUILD_MEMORY_LIMIT` unless overridden), each size in a "
        f"fresh process (peak RSS = that process's `ru_maxrss`), history {args.history}.\n\n{table}\n\n"
        f"Growth exponents (log-log slope over the sizes run; 1.0 = linear):\n\n{exponents}"
    )
    _publish(args, "prepare", "Preparation scale (issue 3)", body, loads)


if __name__ == "__main__":
    main()
