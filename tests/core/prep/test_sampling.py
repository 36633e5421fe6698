"""Sample plans (de-trending, balancing, cap, splits) and the samples written from a frame."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.prep_frames import cell_rows

from factory_assets.core.prep import prepared
from factory_assets.core.prep.checks import sample_facts
from factory_assets.core.prep.frame import build_training_frame
from factory_assets.core.prep.samples import build_model_samples
from factory_assets.core.prep.sampling import (
    SamplePlan,
    SamplingError,
    SnapshotCounts,
    check_positives,
    plan_samples,
)
from factory_assets.core.specs import ModelSpec, SamplingSpec
from factory_assets.core.warehouse import Warehouse

DAYS = [dt.date(2024, m, 1) for m in range(1, 9)]
RATES = [0.05, 0.08, 0.12, 0.06, 0.10, 0.15, 0.07, 0.09]


def counts(rows: int = 5000, rates: list[float] = RATES) -> list[SnapshotCounts]:
    return [SnapshotCounts(d, rows, round(rows * r)) for d, r in zip(DAYS, rates, strict=True)]


def after_rates(plan: SamplePlan, days: list[dt.date]) -> list[float]:
    by_day = {r["snapshot_date"]: r["rate_after"] for r in plan.rates()}
    return [by_day[d] for d in days]


def test_test_split_is_the_latest_snapshot_at_its_natural_rate() -> None:
    plan = plan_samples(counts(), SamplingSpec(max_rows=None), "uk/m")
    assert plan.test_snapshots == [DAYS[-1]]
    assert plan.train_snapshots == DAYS[:-1]
    assert plan.totals("test") == (5000, round(5000 * RATES[-1])), "test is neither de-trended nor balanced"
    assert not plan.cross_sectional


def test_stratify_equalises_the_rate_of_every_training_snapshot() -> None:
    plan = plan_samples(counts(), SamplingSpec(negatives_per_positive=None, max_rows=None), "uk/m")
    before = {r["snapshot_date"]: r["rate_before"] for r in plan.rates()}
    assert max(before.values()) - min(before.values()) > 0.09, "the input has a trend"
    rates = after_rates(plan, plan.train_snapshots)
    assert max(rates) - min(rates) < 1e-3, rates
    assert rates[0] == pytest.approx(plan.target_rate, abs=1e-3)
    assert plan.beta == 1.0


def test_weight_mode_keeps_rows_and_equalises_weighted_rates() -> None:
    spec = SamplingSpec(detrend="weight", negatives_per_positive=None, max_rows=None)
    plan = plan_samples(counts(), spec, "uk/m")
    assert plan.totals("train")[0] + plan.totals("validation")[0] == 7 * 5000
    rates = after_rates(plan, plan.train_snapshots)
    assert max(rates) - min(rates) < 1e-12
    assert len({s.weight for s in plan.strata if s.train}) > 2


def test_balancing_keeps_the_ratio_and_records_beta() -> None:
    spec = SamplingSpec(negatives_per_positive=2.0, max_rows=None, balance_above_rows=None)
    plan = plan_samples(counts(), spec, "uk/m")
    rows, positives = (a + b for a, b in zip(plan.totals("train"), plan.totals("validation"), strict=True))
    assert (rows - positives) / positives == pytest.approx(2.0, rel=0.01)
    negatives_before = sum(s.available for s in plan.strata if s.target == 0 and s.snapshot_date != DAYS[-1])
    unbalanced = SamplingSpec(negatives_per_positive=None, max_rows=None, balance_above_rows=None)
    detrended = plan_samples(counts(), unbalanced, "uk/m")
    negatives_detrended = sum(s.train + s.validation for s in detrended.strata if s.target == 0)
    assert plan.beta == pytest.approx((rows - positives) / negatives_detrended, rel=0.01)
    assert negatives_detrended <= negatives_before
    rates = after_rates(plan, plan.train_snapshots)
    assert max(rates) - min(rates) < 2e-3, "balancing keeps the de-trended rates equal"


def test_the_row_cap_keeps_rates() -> None:
    spec = SamplingSpec(negatives_per_positive=None, max_rows=3000)
    plan = plan_samples(counts(), spec, "uk/m")
    total = sum(plan.totals(s)[0] for s in ("train", "validation", "test"))
    assert 2990 <= total <= 3000
    assert plan.totals("test")[1] / plan.totals("test")[0] == pytest.approx(RATES[-1], abs=0.01)


def test_training_window_and_several_test_snapshots() -> None:
    spec = SamplingSpec(training_window_months=3, test_snapshots=2, max_rows=None)
    plan = plan_samples(counts(), spec, "uk/m")
    assert plan.test_snapshots == DAYS[-2:]
    assert plan.train_snapshots == DAYS[3:6]


def test_validation_is_a_stratified_share() -> None:
    plan = plan_samples(counts(), SamplingSpec(validation_share=0.25, max_rows=None), "uk/m")
    for stratum in plan.strata:
        kept = stratum.train + stratum.validation
        assert abs(stratum.validation - 0.25 * kept) <= 0.5


def test_one_labelled_snapshot_is_cross_sectional() -> None:
    plan = plan_samples([SnapshotCounts(DAYS[0], 10000, 800)], SamplingSpec(max_rows=None), "uk/m")
    assert plan.cross_sectional
    assert plan.test_snapshots == [DAYS[0]] == plan.train_snapshots
    test_rows, test_pos = plan.totals("test")
    assert test_rows == 2000 and test_pos == 160, "a stratified share at the natural rate"
    assert sum(s.test + s.validation + s.train for s in plan.strata) <= 10000


def test_too_few_positives_names_the_cell_and_counts() -> None:
    plan = plan_samples(counts(rows=200), SamplingSpec(max_rows=None), "uk/m")
    with pytest.raises(SamplingError, match=r"uk/m: too few positives per split \(minimum 20\): train \d+"):
        check_positives(plan, 20, "uk/m")


def test_no_labelled_snapshot_fails() -> None:
    with pytest.raises(SamplingError, match="uk/m: the training frame holds no labelled snapshot"):
        plan_samples([], SamplingSpec(), "uk/m")


# --- samples written from a training frame ---------------------------------------------------------

SPEC = ModelSpec.model_validate({
    "name": "s",
    "target": {"kind": "label", "column": "lab", "horizon": 1},
    "features": {"exclude": ["lab"],
                 "history": {"columns": ["x"], "lags": [1], "windows": [3], "recency": []}},
    "sampling": {"negatives_per_positive": 3.0, "max_rows": 5000, "min_positives_per_split": 10,
                 "balance_above_rows": None},
})  # fmt: skip


def write_trending_car(warehouse: Warehouse, months: int = 6, customers: int = 1500) -> None:
    rng = np.random.default_rng(21)
    for k in range(months):
        day = dt.date(2024, k + 1, 1)
        x = rng.normal(size=customers)
        rate = 0.05 + 0.03 * k
        lab = (rng.random(customers) < rate * np.exp(0.5 * x) / np.exp(0.125)).astype(int)
        frame = pd.DataFrame({
            "customer_id": [f"c{i:05d}" for i in range(customers)], "snapshot_date": day, "lab": lab, "x": x,
            "segment": rng.choice(["a", "b", "c"], customers),
        })  # fmt: skip
        warehouse.replace_partition("car.uk", frame, {"snapshot_date": day}, "test")


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    warehouse = Warehouse(tmp_path_factory.mktemp("sampling") / "warehouse.duckdb")
    write_trending_car(warehouse)
    build_training_frame(warehouse, "uk", SPEC, "run")
    build_model_samples(warehouse, "uk", SPEC, "run")
    return warehouse


def test_samples_are_disjoint_and_out_of_time(sampled: Warehouse) -> None:
    facts = sample_facts(sampled, "uk", "s")
    assert facts.duplicated_keys == 0
    assert facts.out_of_time()
    assert facts.first["test"] == facts.last["test"] == pd.Timestamp("2024-05-01")
    assert min(facts.positives.values()) >= 10


def test_sample_rates_are_equal_after_detrending(sampled: Warehouse) -> None:
    rates = sampled.query("select * from prep.sample_rates where model = 's' order by snapshot_date")
    train = rates[rates.snapshot_date < pd.Timestamp("2024-05-01")]
    assert train.rate_before.max() - train.rate_before.min() > 0.08, "the CAR has a trend"
    assert train.rate_after.max() - train.rate_after.min() < 0.01
    written = sampled.query(
        "select snapshot_date, avg(target) as rate from prep.samples where model = 's' and split <> 'test' "
        "group by 1"
    )
    assert written.rate.max() - written.rate.min() < 0.01, "the stored rows carry the planned rates"


def test_load_model_samples_returns_the_kept_features(sampled: Warehouse) -> None:
    samples = prepared.load_model_samples(sampled, "uk", "s")
    assert samples.features[:2] == ["x", "segment"]
    assert samples.categorical == ["segment"]
    assert "lab" not in samples.features
    assert list(samples.frame.columns[:5]) == ["customer_id", "snapshot_date", "split", "weight", "target"]
    assert samples.frame["segment"].map(type).eq(str).all()
    assert samples.frame["x__lag1"].dtype == np.float64
    assert samples.test_snapshots == [dt.date(2024, 5, 1)]
    assert samples.first_snapshot == dt.date(2024, 1, 1)
    assert 0 < samples.beta < 1
    assert not samples.cross_sectional
    train = samples.frame[samples.frame.split == "train"]
    assert (1 - train.target).sum() / train.target.sum() == pytest.approx(3.0, rel=0.05)
    test_only = prepared.load_model_samples(sampled, "uk", "s", splits=("test",))
    expected = samples.frame[samples.frame.split == "test"].reset_index(drop=True)
    pd.testing.assert_frame_equal(test_only.frame, expected)


def test_sampling_is_deterministic(sampled: Warehouse) -> None:
    query = "select customer_id, snapshot_date, split from prep.samples where model = 's' order by all"
    first = sampled.query(query)
    build_model_samples(sampled, "uk", SPEC, "again")
    second = sampled.query(query)
    pd.testing.assert_frame_equal(first, second)


def test_read_api_of_the_frame(sampled: Warehouse) -> None:
    assert prepared.latest_snapshot(sampled, "uk", "s") == dt.date(2024, 6, 1)
    assert prepared.labelled_snapshots(sampled, "uk", "s") == [dt.date(2024, m, 1) for m in range(1, 6)]
    population = prepared.load_population(sampled, "uk", "s", ["segment", "x__mean3"])
    assert list(population.columns) == ["customer_id", "snapshot_date", "target", "segment", "x__mean3"]
    assert len(population) == 1500
    assert population.target.isna().all()
    older = prepared.load_population(sampled, "uk", "s", [], dt.date(2024, 2, 1))
    assert older.target.notna().all()


def test_read_api_errors_name_the_column_and_the_snapshot(sampled: Warehouse) -> None:
    with pytest.raises(ValueError, match=r"uk/s: column\(s\) \['nope'\] are not in the training frame"):
        prepared.load_population(sampled, "uk", "s", ["x", "nope"])
    with pytest.raises(ValueError, match=r"snapshot 2023-01-01 is not in prep\.frames\[market=uk, model=s\]"):
        prepared.load_population(sampled, "uk", "s", [], dt.date(2023, 1, 1))
    with pytest.raises(ValueError, match=r"uk/other: prep\.samples\[market=uk, model=other\] does not exist"):
        prepared.load_model_samples(sampled, "uk", "other")


def test_cross_sectional_samples(warehouse: Warehouse) -> None:
    write_trending_car(warehouse, months=2, customers=2500)
    build_training_frame(warehouse, "uk", SPEC, "run")
    summary = build_model_samples(warehouse, "uk", SPEC, "run")
    assert summary.plan.cross_sectional
    facts = sample_facts(warehouse, "uk", "s")
    assert facts.cross_sectional
    assert facts.duplicated_keys == 0
    assert facts.out_of_time()
    samples = prepared.load_model_samples(warehouse, "uk", "s")
    assert set(samples.frame.split) == {"train", "validation", "test"}
    assert samples.cross_sectional


def test_a_cell_without_positives_fails_before_writing(warehouse: Warehouse) -> None:
    write_trending_car(warehouse, months=4, customers=300)
    warehouse.execute(lambda con: con.execute("update car.uk set lab = 0"))
    build_training_frame(warehouse, "uk", SPEC, "run")
    with pytest.raises(SamplingError, match=r"uk/s: too few positives per split \(minimum 10\): train 0"):
        build_model_samples(warehouse, "uk", SPEC, "run")
    assert cell_rows(warehouse, "prep.samples", "uk", "s") == 0


def pool_rows(plan: SamplePlan) -> tuple[int, int]:
    """(rows, positives) of train + validation."""
    train, validation = plan.totals("train"), plan.totals("validation")
    return train[0] + validation[0], train[1] + validation[1]


def test_within_the_row_budget_every_row_is_kept_and_detrended_by_weights() -> None:
    # given a trending pool of 7 x 5000 rows that the ratio alone would down-sample
    ratio_only = SamplingSpec(negatives_per_positive=2.0, max_rows=None, balance_above_rows=None)
    assert plan_samples(counts(), ratio_only, "uk/m").beta < 1
    # when the row budget holds the pool
    plan = plan_samples(counts(), SamplingSpec(negatives_per_positive=2.0, max_rows=None), "uk/m")
    # then every row is kept (beta 1), the trend is removed by weights, not by dropping rows
    assert SamplingSpec().balance_above_rows == 50_000, "the default budget"
    assert plan.beta == 1.0
    assert pool_rows(plan)[0] == 7 * 5000
    rates = after_rates(plan, plan.train_snapshots)
    assert max(rates) - min(rates) < 1e-12
    assert len({s.weight for s in plan.strata if s.train}) > 2


def test_above_the_row_budget_negatives_fill_the_budget_never_below_the_ratio() -> None:
    spec = SamplingSpec(negatives_per_positive=2.0, max_rows=None, balance_above_rows=20_000)
    plan = plan_samples(counts(), spec, "uk/m")
    rows, positives = pool_rows(plan)
    assert 0 < plan.beta < 1
    assert rows == pytest.approx(20_000, abs=10), "negatives down-sampled just enough to fit the budget"
    assert (rows - positives) / positives > 2.0
    tight = SamplingSpec(negatives_per_positive=2.0, max_rows=None, balance_above_rows=1000)
    rows, positives = pool_rows(plan_samples(counts(), tight, "uk/m"))
    assert (rows - positives) / positives == pytest.approx(2.0, rel=0.01), "the ratio is the floor"
