"""Compute limit on the full grid (issue 7): every market x model through Dagster vs CatBoost alone.

    .venv/bin/python bench/bench_grid.py --markets 22 --models 18 --customers 10000 --months 12 --write-doc

The demo has six model specs; the other models of `--models` are copies of them with another seed
(`<spec>_s<k>`: same target and features, another sample and model), written to a temporary specs
deployment folder that FACTORY_PROJECT_DIR names before the factory is imported (a model is one spec file).
Per market: the ingest run and the row run through Dagster in-process (as in bench_factory.py),
then CatBoost alone (fit on the cell's own samples, predict on its test split and population) for
that market's cells, so that the machine's load hits both sides alike. Reported: the grid's wall
time, the time of the model stages (challenger_model + champion_model + scores, from Dagster's step
statistics), and CatBoost alone, as ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import common

REPO = Path(__file__).resolve().parents[1]
MODEL_STAGES = ("challenger_model", "champion_model", "scores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=22)
    parser.add_argument("--models", type=int, default=18)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--write-doc", action="store_true", help="write the section of docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_grid_") as tmp:
        project = Path(tmp) / "deployment"
        shutil.copytree(REPO / "config", project / "config")
        specs = project / "model_specs"
        specs.mkdir()
        names = common.write_specs(specs, args.models)
        os.environ["FACTORY_PROJECT_DIR"] = str(project)
        run(args, Path(tmp), names)


def run(args: argparse.Namespace, root: Path, names: list[str]) -> None:
    """Land the grid's CAR, then per market: Dagster ingest + row run, then CatBoost alone."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_factory as bf  # imports the factory: FACTORY_PROJECT_DIR must be set before
    import dagster as dg

    from factory_assets.core import cell_status
    from factory_assets.specs_registry import SPECS

    if sorted(SPECS) != sorted(names):
        raise RuntimeError(f"the factory loaded specs {sorted(SPECS)}, not the grid's {sorted(names)}")
    loads = [f"start: {common.load_note()}"]
    with common.Timer() as landing_timer:
        landing, markets = bf.land(root, args.markets, args.customers, args.months, args.seed)
    paths = bf._data_dir(root, landing, "dagster")
    defs = bf.dagster_definitions(paths)
    warehouses = paths.warehouses()
    seconds: dict[str, float] = {}
    stages: dict[str, float] = defaultdict(float)
    per_market: list[dict[str, object]] = []
    catboost = 0.0
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("markets", markets)
        for done, market in enumerate(markets, start=1):
            before = {r.run_id for r in instance.get_runs()}
            bf.dagster_market(defs, instance, market, seconds)
            market_stages: dict[str, float] = defaultdict(float)
            for run_id in {r.run_id for r in instance.get_runs()} - before:
                for step in instance.get_run_step_stats(run_id):
                    if step.start_time is not None and step.end_time is not None:
                        market_stages[step.step_key] += step.end_time - step.start_time
            for key, value in market_stages.items():
                stages[key] += value
            with common.Timer() as alone:
                market_catboost = bf.compute_limit(paths, [market])
            catboost += market_catboost
            seconds[f"catboost {market}"] = alone.seconds
            per_market.append(_market_row(market, seconds, market_stages, market_catboost))
            print(per_market[-1], flush=True)
            loads.append(f"after market {market}: {common.load_note()}")
            scored = sum(
                cell_status.upstream_problem(warehouses.market(m), m, x, ["scores"]) is None
                for m in markets[:done]
                for x in names
            )
            # after every market, so a run stopped early keeps what it measured
            landed = landing_timer.seconds
            report(args, markets[:done], seconds, dict(stages), catboost, landed, loads, scored, per_market)
        bf.dagster_status(defs, instance, seconds)


def _market_row(market: str, seconds: dict, stages: dict, catboost: float) -> dict[str, object]:
    model_s = sum(stages.get(s, 0.0) for s in MODEL_STAGES)
    return {
        "market": market,
        "ingest_s": round(seconds[f"ingest {market}"], 1),
        "row_run_s": round(seconds[f"row {market}"], 1),
        "model_stages_s": round(model_s, 1),
        "catboost_alone_s": round(catboost, 1),
        "ratio": round(model_s / catboost, 2) if catboost else float("nan"),
    }


def report(args, markets, seconds, stages, catboost, landing_s, loads, scored, per_market) -> None:
    """Print the figures and, with --write-doc, write the section."""

    factory_s = sum(v for k, v in seconds.items() if not k.startswith("catboost") and k != "status")
    model_s = sum(stages.get(s, 0.0) for s in MODEL_STAGES)
    cells = len(markets) * args.models
    stage_rows = [{"stage": k, "dagster_step_s": round(v, 1)} for k, v in sorted(stages.items())]
    body = (
        f"Run: {len(markets)} of {args.markets} markets done.\n\n"
        f"Workload: {len(markets)} markets x {args.models} models = {cells} cells ({scored} trained and "
        f"scored; the others stopped with a stated reason, e.g. too few positives), {args.customers:,} "
        f"customers x {args.months} months per market (demo CAR, seed {args.seed}; landing written in "
        f"{landing_s:.0f} s, not counted). Models beyond the demo's six are seeded copies of its specs. "
        f"Each market: `car_ingest_job` and `factory_row_job` through Dagster in-process, then CatBoost "
        f"alone on that market's cells (fit on the cell's train/validation samples with the spec's "
        f"parameters, predict on its test split and scoring population; Pools built outside the timing)."
        f"\n\n| measure | seconds |\n|---|---|\n"
        f"| grid wall time through Dagster (ingest + row runs) | {factory_s:,.0f} |\n"
        f"| model stages (challenger_model + champion_model + scores steps) | {model_s:,.0f} |\n"
        f"| CatBoost alone (fit + predict), all cells | {catboost:,.0f} |\n\n"
        f"**Model stages / CatBoost alone = {model_s / catboost:.2f}x** (issue 16's target <= 1.5x); "
        f"whole grid / CatBoost alone = {factory_s / catboost:.2f}x (target <= 2.5x; it includes ingest, "
        f"Data Checker 1, preparation, sampling, drift reports and release, which CatBoost alone does "
        f"not do).\n\n"
        f"Per market, in run order (a warehouse file per market):\n\n"
        f"{common.markdown_table(per_market)}\n\n"
        f"Dagster step time per stage, all markets:\n\n{common.markdown_table(stage_rows)}"
    )
    print(body)
    if args.write_doc:
        common.write_section("grid", common.section("Compute limit on the full grid (issue 7)", body, loads))


if __name__ == "__main__":
    main()
