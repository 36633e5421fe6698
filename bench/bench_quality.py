"""Model quality: the factory's defaults, untouched, against a tuned logistic regression and CatBoost.

Per dataset (`quality_data.py`: the demo, the insurer example, CDNOW, CoIL 2000, MLC++ churn) the
dataset's CAR goes through the factory's own preparation and training with the spec's defaults;
the baselines (`quality_models.py`) learn from every labelled row of the same training snapshots
with the features the factory's cleaning kept, and all models score the same test rows.
Reported: AUC with DeLong's 95 % interval, top-decile capture, expected calibration error (10
equal-count bins, `core.model.metrics`), and the factory's differences to the best baseline with
their noise (DeLong for AUC, a seeded paired bootstrap for capture); the ECE a perfectly calibrated
model would show on the same test by chance (its noise floor) is stated next to the factory's.

    pip install -c constraints.txt -e ".[bench]"   # lifetimes (CDNOW), pyreadr
    bash bench/get_datasets.sh                     # Debian r-cran-kernlab, r-cran-modeldata, unpacked
    .venv/bin/python bench/bench_quality.py --write-doc
    .venv/bin/python bench/bench_quality.py --datasets coil2000 mlc_churn
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import common
import numpy as np
from quality_data import LOADERS, Dataset
from quality_models import (
    Scored,
    baseline_rows,
    catboost_defaults,
    dropped_columns,
    factory_models,
    logistic_tuned,
)

from factory_assets.core.car.ingest import write_snapshot
from factory_assets.core.model import metrics
from factory_assets.core.model.delong import delong_placements, delong_test
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.warehouse import Warehouse

MARKET = "bench"
BASELINES = ("logistic_tuned", "catboost_defaults")
Z = 1.959964
ECE_LIMIT = 0.02


def auc_interval(y: np.ndarray, score: np.ndarray) -> tuple[float, float, float]:
    """(AUC, low, high): DeLong's 95 % interval."""
    aucs, v10, v01 = delong_placements(y, score)
    se = float(np.sqrt(np.var(v10, ddof=1) / v10.shape[1] + np.var(v01, ddof=1) / v01.shape[1]))
    return float(aucs[0]), float(aucs[0]) - Z * se, float(aucs[0]) + Z * se


def auc_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(AUC(a) - AUC(b), low, high): DeLong's 95 % interval of the paired difference."""
    result = delong_test(y, a, b)
    var = result.covariance[0, 0] + result.covariance[1, 1] - 2 * result.covariance[0, 1]
    diff = result.auc_a - result.auc_b
    return diff, diff - Z * float(np.sqrt(var)), diff + Z * float(np.sqrt(var))


def capture(y: np.ndarray, score: np.ndarray) -> float:
    """Share of the positives in the top decile of `score`."""
    return metrics.lift_and_capture(y, score)[1]


def capture_difference(y: np.ndarray, a: Scored, b: Scored, draws: int, seed: int) -> tuple[float, float]:
    """Seeded paired bootstrap: the 95 % interval of capture(a) - capture(b)."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(draws):
        rows = rng.integers(0, len(y), len(y))
        if 0 < y[rows].sum() < len(rows):
            diffs.append(capture(y[rows], a.rank[rows]) - capture(y[rows], b.rank[rows]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def ece_by_chance(probability: np.ndarray, draws: int, seed: int) -> tuple[float, float]:
    """(mean, 95th percentile) of the ECE of these very probabilities against outcomes drawn from them.

    What a perfectly calibrated model shows on a test of this size by chance alone: the ECE's noise
    floor (a bootstrap of the ECE itself is biased upwards, since resampling adds noise to each bin).
    """
    rng = np.random.default_rng(seed)
    values = [
        metrics.expected_calibration_error(
            (rng.random(len(probability)) < probability).astype(int), probability
        )
        for _ in range(draws)
    ]
    return float(np.mean(values)), float(np.percentile(values, 95))


def prepare(dataset: Dataset, root: Path) -> Warehouse:
    """The dataset's CAR in a fresh warehouse, its training frame and samples built by the factory."""
    warehouse = Warehouse(root / "warehouse.duckdb")
    for day, frame in dataset.snapshots:
        write_snapshot(warehouse, MARKET, frame.assign(snapshot_date=day), day, "bench")
    build_training_frame(warehouse, MARKET, dataset.spec, "bench", dataset.label_columns)
    build_model_samples(warehouse, MARKET, dataset.spec, "bench")
    return warehouse


def measure(dataset: Dataset, root: Path, draws: int, seed: int) -> tuple[list[dict], dict]:
    """Every model's test metrics (rows) and the factory's verdict against the best baseline."""
    warehouse = prepare(dataset, root)
    factory, samples = factory_models(warehouse, MARKET, dataset.spec)
    rows = baseline_rows(warehouse, MARKET, dataset.spec, samples)
    dropped = dropped_columns(warehouse, MARKET, dataset.spec)
    y = rows.test["target"].to_numpy(dtype=int)
    scored = [*factory, logistic_tuned(rows, seed), catboost_defaults(rows, seed)]
    table = [_row(dataset, s, y) for s in scored]
    best = {
        key: max((s for s in scored if s.model in BASELINES), key=lambda s, k=key: _metric(k, y, s))
        for key in ("auc", "capture")
    }
    own = scored[0]
    auc_diff = auc_difference(y, own.rank, best["auc"].rank)
    capture_diff = (
        capture(y, own.rank) - capture(y, best["capture"].rank),
        *capture_difference(y, own, best["capture"], draws, seed),
    )
    ece = metrics.expected_calibration_error(y, own.probability)
    chance = ece_by_chance(own.probability, max(draws // 2, 50), seed)
    verdict = {
        "dataset": dataset.name,
        "test rows (positives)": f"{len(y):,} ({int(y.sum()):,})",
        "train rows (positives)": f"{len(rows.train):,} ({int(rows.train['target'].sum()):,})",
        "factory": own.detail.split(";")[0],
        "AUC diff vs best [95% CI]": f"{_interval(*auc_diff)} ({best['auc'].model})",
        "capture diff vs best [95% CI]": f"{_interval(*capture_diff)} ({best['capture'].model})",
        "ECE (chance: mean, 95th pct)": f"{ece:.4f} ({chance[0]:.4f}, {chance[1]:.4f})",
        "verdict": _verdict(auc_diff, capture_diff, ece, chance[1]),
        "dropped by cleaning": ", ".join(dropped) or "none",
    }
    return table, verdict


def _verdict(auc_diff: tuple[float, ...], capture_diff: tuple[float, ...], ece: float, chance: float) -> str:
    """Per criterion: met, within noise (the interval reaches 0; the ECE within chance), or missed."""
    parts = []
    for name, (value, _, high) in (("AUC", auc_diff), ("capture", capture_diff)):
        parts.append(f"{name} {'met' if value >= 0 else 'within noise' if high >= 0 else 'missed'}")
    parts.append(f"ECE {'met' if ece <= ECE_LIMIT else 'within chance' if ece <= chance else 'missed'}")
    return ", ".join(parts)


def _metric(key: str, y: np.ndarray, s: Scored) -> float:
    return metrics.auc(y, s.rank) if key == "auc" else capture(y, s.rank)


def _interval(value: float, low: float, high: float) -> str:
    return (
        f"{value:+.4f} [{low:+.4f}, {high:+.4f}]"
        if low < 0 or value < 0
        else f"{value:.4f} [{low:.4f}, {high:.4f}]"
    )


def _row(dataset: Dataset, s: Scored, y: np.ndarray) -> dict[str, object]:
    auc, low, high = auc_interval(y, s.rank)
    return {
        "dataset": dataset.name,
        "model": s.model,
        "AUC [95% CI]": f"{auc:.4f} [{low:.4f}, {high:.4f}]",
        "top-decile capture": round(capture(y, s.rank), 4),
        "ECE": round(metrics.expected_calibration_error(y, s.probability), 4),
        "fit s": round(s.fit_seconds, 1),
        "detail": s.detail,
    }


def describe(datasets: list[Dataset]) -> str:
    """The datasets table: source and split."""
    return common.markdown_table([{"dataset": d.name, "source": d.source, "test": d.split} for d in datasets])


def main() -> None:
    """Run the chosen datasets, print the tables, optionally write docs/benchmarks.md's section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--bootstrap", type=int, default=500, help="paired bootstrap draws")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    loads, tables, verdicts, datasets = [f"start: {common.load_note()}"], [], [], []
    for name in args.datasets:
        dataset = LOADERS[name]()
        with tempfile.TemporaryDirectory() as tmp:
            table, verdict = measure(dataset, Path(tmp), args.bootstrap, args.seed)
        datasets.append(dataset)
        tables += table
        verdicts.append(verdict)
        loads.append(f"after {name}: {common.load_note()}")
        print(common.markdown_table(table), flush=True)
        print(common.markdown_table([verdict]), flush=True)
    body = (
        f"{describe(datasets)}\n\nEvery model on the same test rows:\n\n{common.markdown_table(tables)}\n\n"
        f"The factory's defaults against the best baseline of each metric (differences: factory minus "
        f"baseline; AUC by DeLong, capture by a paired bootstrap of {args.bootstrap} draws, seed "
        f"{args.seed}; the ECE next to what a perfectly calibrated model shows on the same test by chance, "
        f"outcomes drawn from the factory's own probabilities {max(args.bootstrap // 2, 50)} times):"
        f"\n\n{common.markdown_table(verdicts)}"
    )
    if args.write_doc:
        common.write_section("quality", common.section("Model quality (issue 18)", body, loads))


if __name__ == "__main__":
    main()
