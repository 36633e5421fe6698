"""Reason codes on a demo-like population: seconds per family against the plain prediction.

Builds a demo market through the real upstream (bench_catboost.build_demo), fits both families at the
spec defaults on the cell's sample, then explains `--rows` customers of the scoring population (the
latest snapshot, repeated with new ids when it is smaller) with `reason_codes` (CatBoost SHAP values,
logistic coefficient x value) and times it next to `predict_sample_scale` on the same rows.

    .venv/bin/python bench/bench_reason_codes.py --rows 10000
"""

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_catboost import build_demo

from factory_assets.core.model.reasons import reason_codes
from factory_assets.core.model.training import fit_family, predict_sample_scale
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.prep import prepared
from factory_assets.core.specs import ModelParams


def population_of(warehouse, market: str, model: str, features: list[str], rows: int) -> pd.DataFrame:
    """`rows` customers of the latest snapshot (repeated with new ids if the snapshot is smaller)."""
    population = prepared.load_population(warehouse, market, model, features)
    copies = [
        population.assign(customer_id=population["customer_id"] + f"-{i}")
        for i in range(-(-rows // len(population)))
    ]
    return pd.concat(copies, ignore_index=True).iloc[:rows]


def median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def main() -> None:
    """Build the sample, fit both families, print the timings as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--market", default="bench")
    parser.add_argument("--model", default="churn")
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--top-n", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        build_demo(Path(tmp), args.customers, args.months, args.market, args.model)
        warehouse = FactoryPaths(Path(tmp) / "data").warehouses().market(args.market)
        samples = prepared.load_model_samples(warehouse, args.market, args.model)
        population = population_of(warehouse, args.market, args.model, list(samples.features), args.rows)
    print(
        f"{len(population)} rows, {len(samples.features)} features ({len(samples.categorical)} categorical)"
    )
    rows = []
    for family in ("catboost", "logistic"):
        trained = fit_family(samples, family, ModelParams(), "bench")
        use = (trained.model, population, trained.features, trained.categorical)
        rows.append(
            {
                "family": family,
                "trees": trained.best_iteration + 1 if family == "catboost" else "",
                "predict_s": median_seconds(lambda use=use: predict_sample_scale(*use), args.repeats),
                "reason_codes_s": median_seconds(
                    lambda use=use: reason_codes(*use, args.top_n), args.repeats
                ),
            }
        )
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
