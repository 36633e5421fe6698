"""CatBoost settings on a demo-like sample: fit time, trees kept by early stopping, out-of-time AUC.

Builds a demo market through the real upstream (demo CAR -> car_snapshots -> training_frame ->
model_samples) in a temporary directory, or reads an existing warehouse, then fits the cell's sample
with a few settings of the spec's `model` block and scores the test both from a `Pool` and from
object strings.

    .venv/bin/python bench/bench_catboost.py --customers 20000 --model churn
    .venv/bin/python bench/bench_catboost.py --warehouse data/warehouse/uk.duckdb --market uk --model churn
"""

import argparse
import datetime as dt
import logging
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool

from factory_assets import ingest, prepare
from factory_assets.core.model import metrics
from factory_assets.core.model.training import fit_challenger, model_frame, predict_sample_scale, split_frame
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.prep import prepared
from factory_assets.core.specs import ModelParams
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import DemoConfig, write_landing
from factory_assets.partitions import Cell
from resources import build_resources
from resources.landing import LandingResource

SETTINGS: dict[str, dict[str, object]] = {
    "spec default (ohe 8, ctr 1, depth 6, lr .08)": {},
    "catboost default cats (ohe 2, ctr 4)": {"one_hot_max_size": 2, "max_ctr_complexity": 4},
    "ctr 2": {"max_ctr_complexity": 2},
    "depth 4": {"depth": 4},
    "depth 8": {"depth": 8},
    "lr 0.15": {"learning_rate": 0.15},
    "lr 0.04, 800 its": {"learning_rate": 0.04, "iterations": 800, "early_stopping_rounds": 80},
}


def build_demo(root: Path, customers: int, months: int, market: str, model: str) -> Warehouse:
    """A demo market prepared by the real upstream assets under `root`."""
    paths = FactoryPaths(root / "data")
    config = DemoConfig(markets={market: customers}, months=months, start=dt.date(2024, 1, 1), seed=11)
    write_landing(config, paths.landing)
    resources = build_resources(paths.data_dir)
    resources["landing"] = LandingResource(landing_dir=str(paths.landing), settle_seconds=0)
    key = str(Cell(market, model).key)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("markets", [market])
        dg.materialize(ingest.ASSETS, instance=instance, resources=resources, partition_key=market)
        dg.materialize(prepare.ASSETS, instance=instance, resources=resources, partition_key=key)
    return paths.warehouses().market(market)


def bench(samples: prepared.ModelSamples, base: ModelParams, repeats: int) -> pd.DataFrame:
    """Fit every setting; time, trees and out-of-time AUC / lift per setting."""
    test = split_frame(samples, "test")
    y = test["target"].to_numpy(dtype=int)
    rows = []
    for name, change in SETTINGS.items():
        params = base.model_copy(update=change)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            trained = fit_challenger(samples, params, "bench")
            times.append(time.perf_counter() - start)
        scores = predict_sample_scale(trained.model, test, trained.features, trained.categorical)
        result = metrics.evaluate(y, scores, samples.beta)
        rows.append(
            {
                "setting": name,
                "fit_s": round(float(np.median(times)), 2),
                "trees": trained.best_iteration + 1,
                "test_auc": round(result["auc"], 4),
                "lift_top_decile": round(result["lift_top_decile"], 3),
                **_predict_times(trained.model, test, trained),
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return round(time.perf_counter() - start, 3)


def _predict_times(model: CatBoostClassifier, test: pd.DataFrame, trained) -> dict[str, float]:
    """Seconds to score the test from a Pool, object strings or `category` dtype (conversion excluded)."""
    frame = model_frame(test, trained.features, trained.categorical)
    cats = [c for c in trained.features if c in trained.categorical]
    pool = Pool(frame, cat_features=cats)
    as_category = frame.astype({c: "category" for c in cats})
    return {
        "build_pool_s": _timed(lambda: Pool(frame, cat_features=cats)),
        "predict_pool_s": _timed(lambda: model.predict_proba(pool)),
        "predict_strings_s": _timed(lambda: model.predict_proba(frame)),
        "predict_category_s": _timed(lambda: model.predict_proba(as_category)),
    }


def main() -> None:
    """Parse arguments, get the sample, print the comparison as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, help="use this warehouse instead of building a demo")
    parser.add_argument("--market", default="bench")
    parser.add_argument("--model", default="churn")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = (
            Warehouse(args.warehouse)
            if args.warehouse
            else build_demo(Path(tmp), args.customers, args.months, args.market, args.model)
        )
        samples = prepared.load_model_samples(warehouse, args.market, args.model)
    counts = samples.frame["split"].value_counts().to_dict()
    print(f"sample: {counts}, {len(samples.features)} features ({len(samples.categorical)} categorical)")
    print(bench(samples, ModelParams(), args.repeats).to_markdown(index=False))


if __name__ == "__main__":
    main()
