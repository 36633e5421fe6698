"""Orchestration overhead, scoring throughput and the compute limit (issue 7), on one demo workload.

    .venv/bin/python bench/bench_factory.py --markets 2 --customers 10000 --months 12 --write-doc

One seeded demo CAR (`--markets` markets x every model spec x `--customers` x `--months`) is landed
once, then the whole factory runs twice on it, each into its own temporary data dir:

1. Dagster: the real jobs executed in-process on an ephemeral instance (`car_ingest_job` per market,
   `factory_row_job` per market row with `row_tags`, then `factory_status_job`), as the CLI's daemon
   and the tests run them, with the in-process executor;
2. plain Python: the same core functions in a loop (the staged ingest, `admit_market`: Data Checker 1
   per snapshot before it is admitted, as `car_snapshots` runs it; then per cell the upstream gate,
   the stage's core function and its `ops.cell_status` record, then the status grid).

Then, on the plain run's warehouse: scoring throughput (`score_cell` + `release_cell` into a fresh
release store, per cell, vs raw `predict_proba` on the same population rows) and the compute limit
(CatBoost fit on the same samples + predict on the test and the population, vs the factory's
challenger + champion + scores stages of the same cells).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import common
import dagster as dg
from catboost import CatBoostClassifier

from factory_assets import factory, ingest, jobs, prepare, release
from factory_assets.core import cell_status
from factory_assets.core.car.admit import CheckSettings, admit_market
from factory_assets.core.car.ingest import collect_inputs
from factory_assets.core.cell_status import StageOutcome
from factory_assets.core.clock import utc_now
from factory_assets.core.contract import load_contract
from factory_assets.core.model import registry, training
from factory_assets.core.model.challenger import train_challenger_if_triggered
from factory_assets.core.model.decision import decide_champion
from factory_assets.core.model.drift_stage import measure_drift
from factory_assets.core.model.store import ModelStore
from factory_assets.core.model.training import (
    as_object_categories,
    catboost_params,
    make_pool,
    model_frame,
    split_frame,
)
from factory_assets.core.names import Table, car_table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.prep import prepared
from factory_assets.core.prep.checks import sample_facts
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.prep.sql import literal
from factory_assets.core.release import gate as release_cell_module
from factory_assets.core.release import scoring, tables
from factory_assets.core.release.gate import evaluate_cell, release_cell
from factory_assets.core.release.scoring import score_cell
from factory_assets.core.release.store import ReleaseStore, write_atomic
from factory_assets.core.stage import StageContext
from factory_assets.core.status.grid import build_status, store_status
from factory_assets.core.status.html import render_status_html
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import DemoConfig, write_landing
from factory_assets.specs_registry import DEPLOYMENT, SPECS
from resources import build_resources
from resources.landing import LandingResource

MODELS = sorted(SPECS)
MODEL_STAGES = ("challenger_model", "champion_model", "scores")
CHECK_STAGES = ("sample_checks", "data_checker_2")
Work = Callable[[StageContext, str, str], object]


def land(root: Path, markets: int, customers: int, months: int, seed: int) -> tuple[Path, list[str]]:
    """The demo CAR files of every market, once, under `root/landing`."""
    names = [f"m{i + 1}" for i in range(markets)]
    config = DemoConfig(markets=dict.fromkeys(names, customers), months=months, seed=seed)
    write_landing(config, root / "landing")
    return root / "landing", names


def _data_dir(root: Path, landing: Path, name: str) -> FactoryPaths:
    paths = FactoryPaths(root / name)
    shutil.copytree(landing, paths.landing, copy_function=shutil.copy2)
    return paths


def dagster_definitions(paths: FactoryPaths) -> dg.Definitions:
    """The code location of `definitions.py`, with its resources under `paths` (landing settled at once)."""
    resources = build_resources(paths.data_dir)
    resources["landing"] = LandingResource(landing_dir=str(paths.landing), settle_seconds=0)
    return dg.Definitions(
        assets=[*ingest.ASSETS, *prepare.ASSETS, *factory.ASSETS, *release.ASSETS],
        asset_checks=[*ingest.CHECKS, *prepare.CHECKS, *factory.CHECKS, *release.CHECKS],
        jobs=[*ingest.JOBS, *jobs.JOBS],
        resources=resources,
        executor=dg.in_process_executor,
    )


def dagster_market(defs: dg.Definitions, instance: dg.DagsterInstance, market: str, seconds: dict) -> None:
    """The market's ingest run and its row run, in-process; seconds per run into `seconds`."""
    with common.timed(f"ingest {market}", seconds):
        job = defs.resolve_job_def("car_ingest_job")
        _ok(job.execute_in_process(instance=instance, partition_key=market))
    with common.timed(f"row {market}", seconds):
        job = defs.resolve_job_def("factory_row_job")
        _ok(job.execute_in_process(instance=instance, tags=jobs.row_tags(market), raise_on_error=False))


def dagster_status(defs: dg.Definitions, instance: dg.DagsterInstance, seconds: dict) -> None:
    """The status grid run."""
    with common.timed("status", seconds):
        _ok(defs.resolve_job_def("factory_status_job").execute_in_process(instance=instance))


def _ok(result: dg.ExecuteInProcessResult) -> None:
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"Dagster run {result.run_id} failed in steps {failed}")


def _stages(ctx: StageContext, warehouse: Warehouse, store: ReleaseStore) -> dict[str, tuple[str, Work]]:
    labels = frozenset(n for n, rule in load_contract().columns.items() if rule.role == "label")
    rid = ctx.run_id
    return {
        "training_frame": ("data_checker_1", lambda c, m, x: build_training_frame(warehouse, m, SPECS[x], rid,
                                                                                  labels)),
        "model_samples": ("training_frame", lambda c, m, x: build_model_samples(warehouse, m, SPECS[x], rid)),
        "sample_checks": ("model_samples", lambda c, m, x: sample_facts(warehouse, m, x)),
        "drift_report": ("model_samples", lambda c, m, x: measure_drift(c, SPECS[x], m)),
        "challenger_model": ("drift_report",
                             lambda c, m, x: train_challenger_if_triggered(c, SPECS[x], m)),
        "champion_model": ("challenger_model", lambda c, m, x: decide_champion(c, SPECS[x], m)),
        "scores": ("champion_model", lambda c, m, x: score_cell(c, SPECS[x], m)),
        "data_checker_2": ("scores", lambda c, m, x: evaluate_cell(warehouse, store, SPECS[x], m, rid,
                                                                   ModelStore(c.models_dir))),
        "released_scores": ("scores", lambda c, m, x: release_cell(c, SPECS[x], m)),
    }  # fmt: skip


class PlainFactory:
    """The same core functions in a plain loop, with the same per-cell gate and status records."""

    def __init__(self, paths: FactoryPaths) -> None:
        self.paths, self.contract, self.run_id = paths, load_contract(), "plain"
        self.warehouses = paths.warehouses()
        self.folder = LandingResource(landing_dir=str(paths.landing), settle_seconds=0).folder()
        self.per_stage: dict[str, float] = defaultdict(float)

    def context(self, market: str) -> StageContext:
        """The stage context of one market's row: its own warehouse file, as `cellrun.stage_context`."""
        paths = self.paths
        return StageContext(
            self.warehouses.market(market), paths.models, paths.reports, paths.releases, self.run_id
        )

    def market(self, market: str, seconds: dict) -> None:
        """The staged ingest (Data Checker 1 per snapshot, then admission), then every stage of the row."""
        ctx = self.context(market)
        wh, contract, rid = ctx.warehouse, self.contract, self.run_id
        stages = _stages(ctx, wh, ReleaseStore(self.paths.releases))
        with common.timed(f"ingest {market}", seconds):
            inputs, problems = collect_inputs(self.folder, [], market, contract.customer_key)
            admit_market(wh, market, inputs, problems, contract, rid, checker_settings(market))
        with common.timed(f"row {market}", seconds):
            for stage, (upstream, work) in stages.items():
                start = time.perf_counter()
                with wh.session():  # as `cellrun.run_cells`: one connection for the stage's cells
                    for model in MODELS:
                        _cell(ctx, stage, upstream, work, market, model)
                self.per_stage[stage] += time.perf_counter() - start

    def status(self, markets: list[str], seconds: dict) -> None:
        """The status grid, read over every market's file, stored per market and rendered."""
        with common.timed("status", seconds):
            now = utc_now()
            grid = build_status(self.warehouses.union(markets), markets, MODELS, now)
            store_status(self.warehouses, grid, self.run_id)
            page = render_status_html(grid, now).encode("utf-8")
            write_atomic(self.paths.reports / "status.html", page)


def checker_settings(market: str) -> CheckSettings:
    """Data Checker 1's settings for `market`, from the deployment, as `car_snapshots` builds them."""
    thresholds, severities = DEPLOYMENT.checker_one(market)
    return CheckSettings(
        thresholds,
        severities,
        DEPLOYMENT.contract.customer_key,
        DEPLOYMENT.label_columns,
        DEPLOYMENT.accepts_restatements(market),
    )


def _cell(ctx: StageContext, stage: str, upstream: str, work: Work, market: str, model: str) -> None:
    problem = cell_status.upstream_problem(ctx.warehouse, market, model, [upstream])
    if problem is not None:
        raise RuntimeError(f"plain loop: {market}/{model} {stage} would be skipped: {problem}")
    work(ctx, market, model)
    if stage not in CHECK_STAGES:  # checks report through Dagster, they record no cell status
        cell_status.record(ctx.warehouse, StageOutcome(market, model, stage, "ok"), ctx.run_id)


def enlarge_population(warehouse: Warehouse, market: str, copies: int) -> None:
    """Repeat the latest snapshot's customers `copies` times (new customer ids).

    Copied in the CAR, the market's history and each cell's training frame, where scoring reads its
    population from, so this scales the scoring workload without training at that size; the model
    scores the copies like any customer.
    """
    copied = "f.* replace (f.customer_id || '-r' || r.i as customer_id)"
    insert = f"insert into {{t}} by name select {copied} from {{t}} f, range(1, {copies}) r(i) where"
    latest = "f.snapshot_date = (select max(snapshot_date) from {t})"
    statements = [
        f"{insert} {latest}".format(t=car_table(market)),
        f"{insert} f.market = $m and {latest}".format(t=Table.HISTORY),
        *(
            f"{insert} f.market = $m and f.model = {literal(model)} and {latest}".format(t=Table.FRAMES)
            for model in MODELS
        ),
    ]
    for sql in statements:
        params = {"m": market} if "$m" in sql else None
        warehouse.execute(lambda con, q=sql, p=params: con.execute(q, p))


SCORING_PHASES = (
    ("read population (DuckDB -> pandas)", prepared, "load_population"),
    ("load model artefact", ModelStore, "load"),
    ("features (model_frame + Pool)", training, "make_pool"),
    ("predict_proba", scoring, "predict_sample_scale"),
    ("rank", scoring, "percentile_ranks"),
    ("warehouse writes (scores + history, check results, release record)", Warehouse, "replace_partition"),
    ("realised performance", scoring, "update_realised_performance"),
    ("Data Checker 2 (read back, rules)", release_cell_module, "evaluate_cell"),
    ("publish (sort, release id, 2 Parquet + CSV, fsync, manifest)", release_cell_module, "publish"),
    ("record release", tables, "record_release"),
    ("open warehouse connections (catalog load)", Warehouse, "_connect_with_retry"),
)
"""(label, owner, attribute): the calls `score_cell` and `release_cell` make, timed by `phase_timer`."""


@contextmanager
def phase_timer(phases: tuple[tuple[str, object, str], ...]) -> Iterator[dict[str, float]]:
    """Seconds spent in each phase's function, exclusive of the other phases it calls.

    Instrumentation for the profile only: each function is wrapped by a timer for the block and
    restored after it; what the functions do is unchanged.
    """
    spent: dict[str, float] = defaultdict(float)
    inner: list[float] = []

    def wrap(label: str, function: Callable) -> Callable:
        def timed(*args: object, **kwargs: object) -> object:
            inner.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                spent[label] += total - inner.pop()
                if inner:
                    inner[-1] += total

        return timed

    originals = [(owner, name, getattr(owner, name)) for _, owner, name in phases]
    for (label, owner, name), (_, _, function) in zip(phases, originals, strict=True):
        setattr(owner, name, wrap(label, function))
    try:
        yield spent
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)


def scoring_throughput(
    paths: FactoryPaths, market: str, root: Path
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Per cell: end-to-end score + gate + release vs raw `predict_proba` on the same rows.

    Two raw baselines: `predict_proba` on the feature DataFrame (CatBoost builds its Pool inside the
    call, as a data scientist's own call would) and on a ready `Pool` (the bare tree evaluation).
    Also returns the end-to-end time split into phases, summed over the cells.
    """
    warehouse = paths.warehouses().market(market)
    fresh = root / "throughput_releases"
    ctx = StageContext(warehouse, paths.models, paths.reports, fresh, "throughput")
    rows: list[dict[str, object]] = []
    total = 0.0
    with phase_timer(SCORING_PHASES) as spent:
        for model in MODELS:
            with common.Timer() as end_to_end:
                score_cell(ctx, SPECS[model], market)
                outcome = release_cell(ctx, SPECS[model], market)
            total += end_to_end.seconds
            row = {"cell": f"{market}/{model}", "release": outcome.status, "end_to_end_s": end_to_end.seconds}
            rows.append(row)
    phases = {label: spent[label] for label, _, _ in SCORING_PHASES}
    rest = "rest (registry lookups, closing connections = checkpoints, score frame)"
    phases[rest] = total - sum(phases.values())
    for model, row in zip(MODELS, rows, strict=True):
        row.update(_raw_predict(ctx, market, model))
        n, seconds = int(row["rows"]), float(row["end_to_end_s"])
        row["end_to_end_s"] = round(seconds, 2)
        row["end_to_end_rows_per_s"] = round(n / seconds)
        row["ratio_frame"] = round(float(row["raw_frame_s"]) / seconds, 3)
        row["ratio_pool"] = round(float(row["raw_pool_s"]) / seconds, 3)
        print(row, flush=True)
    profile = [
        {"phase": label, "seconds": round(value, 2), "share": f"{value / total:.0%}"}
        for label, value in phases.items()
    ]
    return rows, profile


def _raw_predict(ctx: StageContext, market: str, model: str) -> dict[str, object]:
    """Raw `predict_proba` of the cell's champion on the rows it scored: on a DataFrame and on a Pool.

    A linear champion (scikit-learn pipeline) has no Pool: both figures are its `predict_proba` on
    the feature frame it takes.
    """
    champion = registry.current_champion(ctx.warehouse, market, model)
    record = registry.model_record(ctx.warehouse, market, model, champion.version)
    population = prepared.load_population(ctx.warehouse, market, model, record.features)
    booster = ModelStore(ctx.models_dir).load(record.version)
    frame = model_frame(population, record.features, record.categorical)
    if isinstance(booster, CatBoostClassifier):
        ready = make_pool(population, record.features, record.categorical)
    else:
        frame = ready = as_object_categories(frame, record.categorical)
    with common.Timer() as on_frame:
        booster.predict_proba(frame)
    with common.Timer() as on_pool:
        booster.predict_proba(ready)
    return {
        "rows": len(population),
        "family": "catboost" if isinstance(booster, CatBoostClassifier) else "logistic",
        "raw_frame_s": round(on_frame.seconds, 3),
        "raw_pool_s": round(on_pool.seconds, 3),
    }


def compute_limit(paths: FactoryPaths, markets: list[str]) -> float:
    """Seconds of CatBoost fit + predict (test and population) alone, on every cell's own samples.

    Cells whose `scores` stage did not succeed (e.g. too few positives to sample) are left out, as
    the factory trained nothing for them either.
    """
    total = 0.0
    for market in markets:
        warehouse = paths.warehouses().market(market)
        for model in MODELS:
            if cell_status.upstream_problem(warehouse, market, model, ["scores"]) is not None:
                continue
            samples = prepared.load_model_samples(warehouse, market, model)
            features, cats = list(samples.features), list(samples.categorical)
            train, valid, test = (
                make_pool(split_frame(samples, s), features, cats, with_label=s != "test")
                for s in ("train", "validation", "test")
            )
            rows = prepared.load_population(warehouse, market, model, features)
            population = make_pool(rows, features, cats)
            start = time.perf_counter()
            booster = CatBoostClassifier(**catboost_params(SPECS[model].model))
            booster.fit(train, eval_set=valid)
            booster.predict_proba(test)
            booster.predict_proba(population)
            total += time.perf_counter() - start
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=2)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, help="keep the data here (empty dir)")
    parser.add_argument("--score-copies", type=int, default=20, help="population copies for throughput")
    parser.add_argument("--write-doc", action="store_true", help="write the sections of docs/benchmarks.md")
    parser.add_argument(
        "--scoring-only", action="store_true",
        help="the plain loop on the first market, then scoring throughput only (its own section)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.scoring_only:
        scoring_only(args)
        return
    loads = [f"start: {common.load_note()}"]
    with tempfile.TemporaryDirectory(prefix="bench_factory_") as tmp:
        root = args.work_dir or Path(tmp)
        landing, markets = land(root, args.markets, args.customers, args.months, args.seed)
        defs = dagster_definitions(_data_dir(root, landing, "dagster"))
        plain_paths = _data_dir(root, landing, "plain")
        plain = PlainFactory(plain_paths)
        dagster_s: dict[str, float] = {}
        plain_s: dict[str, float] = {}
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("markets", markets)
            for market in markets:  # interleaved, so a change in the machine's load hits both sides
                dagster_market(defs, instance, market, dagster_s)
                plain.market(market, plain_s)
                loads.append(f"after market {market}: {common.load_note()}")
                print(f"after {market}: dagster {dagster_s}, plain {plain_s}", flush=True)
            dagster_status(defs, instance, dagster_s)
            plain.status(markets, plain_s)
        per_stage = dict(plain.per_stage)
        enlarge_population(plain_paths.warehouses().market(markets[0]), markets[0], args.score_copies)
        throughput, scoring_profile = scoring_throughput(plain_paths, markets[0], root)
        limit_s = compute_limit(plain_paths, markets)
        loads.append(f"end: {common.load_note()}")
    report(args, markets, dagster_s, plain_s, per_stage, (throughput, scoring_profile), limit_s, loads)


def scoring_only(args: argparse.Namespace) -> None:
    """The first market through the plain loop, then the scoring throughput on its enlarged population."""
    loads = [f"start: {common.load_note()}"]
    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        root = args.work_dir or Path(tmp)
        landing, markets = land(root, 1, args.customers, args.months, args.seed)
        plain_paths = _data_dir(root, landing, "plain")
        PlainFactory(plain_paths).market(markets[0], {})
        loads.append(f"after the plain run: {common.load_note()}")
        enlarge_population(plain_paths.warehouses().market(markets[0]), markets[0], args.score_copies)
        figures = scoring_throughput(plain_paths, markets[0], root)
        loads.append(f"end: {common.load_note()}")
    text = scoring_text(args, figures)
    print(text)
    if args.write_doc:
        title = "Scoring throughput on the per-market storage (issue 16)"
        common.write_section("scoring_storage", common.section(title, text, loads))


def scoring_text(args: argparse.Namespace, scoring_figures: tuple[list[dict], list[dict]]) -> str:
    """The scoring throughput section: per cell, overall, and where the end-to-end time goes."""
    throughput, profile = scoring_figures
    total_rows = sum(r["rows"] for r in throughput)
    e2e = sum(r["end_to_end_s"] for r in throughput)
    on_frame = sum(r["raw_frame_s"] for r in throughput)
    on_pool = sum(r["raw_pool_s"] for r in throughput)
    return (
        f"Workload: the first market of the run ({args.customers:,} customers x {args.months} months, demo "
        f"CAR, seed {args.seed}), its latest snapshot's eligible population per "
        f"cell repeated {args.score_copies} times with new customer ids (`enlarge_population`: the "
        f"scoring path at a realistic size without training at it). End to end = `score_cell` (read "
        f"population, features, predict, rank, write scores + history, realised performance) + "
        f"`release_cell` (Data Checker 2 rules, publish into a fresh release store, record). Raw = the "
        f"champion's `predict_proba` on the same rows, timed twice: on the feature DataFrame "
        f"(`raw_frame_s`: CatBoost builds its Pool inside the call) and on a ready `Pool` "
        f"(`raw_pool_s`: the bare tree evaluation; a linear champion has no Pool, both are its "
        f"`predict_proba` on its feature frame).\n\n{common.markdown_table(throughput)}\n\n"
        f"**Overall: {total_rows / e2e:,.0f} rows/s end to end = {on_frame / e2e:.1%} of `predict_proba` "
        f"on the DataFrame ({total_rows / on_frame:,.0f} rows/s) and {on_pool / e2e:.1%} of it on a "
        f"ready Pool ({total_rows / on_pool:,.0f} rows/s)**.\n\n"
        f"Where the end-to-end time goes, all cells (each phase's own time, `phase_timer`):\n\n"
        f"{common.markdown_table(profile)}"
    )


def report(args, markets, dagster_s, plain_s, per_stage, scoring_figures, limit_s, loads) -> None:
    """Print the figures and, with --write-doc, write the three sections."""
    workload = (
        f"{len(markets)} markets x {len(MODELS)} models x {args.customers:,} customers x {args.months} "
        f"months (demo CAR, seed {args.seed}); the issue's reference is 4 x 6 x 50k x 24"
    )
    steps = [
        {"step": k, "dagster_s": round(v, 1), "plain_s": round(plain_s[k], 1)} for k, v in dagster_s.items()
    ]
    total_d, total_p = sum(dagster_s.values()), sum(plain_s.values())
    steps.append({"step": "total", "dagster_s": round(total_d, 1), "plain_s": round(total_p, 1)})
    ratio = total_d / total_p
    stage_rows = [{"stage": k, "plain_s": round(v, 1)} for k, v in per_stage.items()]
    factory_model_s = sum(per_stage[s] for s in MODEL_STAGES)
    orchestration = (
        f"Workload: {workload}. Wall-clock per run; the plain loop does the same per-cell gate and "
        f"`ops.cell_status` record as `run_cells`, and the domain work of the asset checks (the "
        f"`model_samples` checks read `sample_facts`, Data Checker 2 runs `evaluate_cell`), so the "
        f"difference is Dagster's own cost (runs, steps, events, check and metadata plumbing)."
        f"\n\n{common.markdown_table(steps)}\n\n"
        f"**Ratio Dagster / plain = {ratio:.3f}** (target <= 1.10).\n\nPlain loop per stage (all cells):\n\n"
        f"{common.markdown_table(stage_rows)}"
    )
    scoring = scoring_text(args, scoring_figures)
    limit = (
        f"Workload: as above. CatBoost alone = fit with the spec's parameters on each cell's own "
        f"train/validation samples + predict on its test and scoring population (Pools prepared "
        f"outside the timing), summed over the {len(markets) * len(MODELS)} cells: **{limit_s:.1f} s**. "
        f"The factory's challenger_model + champion_model + scores stages for the same cells (plain "
        f"loop): **{factory_model_s:.1f} s**, i.e. CatBoost is {limit_s / factory_model_s:.0%} of it "
        f"(**stages / CatBoost alone = {factory_model_s / limit_s:.2f}x**, target <= 1.2x). The 22 x 18 "
        f"grid has its own script, `bench/bench_grid.py`, and section."
    )
    print(orchestration, scoring, limit, sep="\n\n")
    if args.write_doc:
        for name, title, body in (
            ("orchestration", "Orchestration overhead (issue 7)", orchestration),
            ("scoring", "Scoring throughput (issue 7)", scoring),
            ("compute", "Compute limit (issue 7)", limit),
        ):
            common.write_section(name, common.section(title, body, loads))


if __name__ == "__main__":
    main()
