"""The demo CAR generator: deterministic, contract-valid, with real dynamics, drift and faults."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from factory_assets.core.contract import SNAPSHOT_FILE, ContractError, load_contract, validate_car
from factory_assets.demo.car import (
    DemoConfig,
    DriftShift,
    MarketProfile,
    generate_market,
    write_landing,
)
from factory_assets.demo.dynamics import MonthContext, Moves, decide, observe
from factory_assets.demo.faults import FAULT_KINDS, write_faulty_file
from factory_assets.demo.population import new_customers
from factory_assets.demo.profile import NO_DRIFT, derive_profile

CONTRACT = load_contract()
EXTRA_COLUMNS = [
    "gender", "household_size", "income_band", "payment_method", "contract_type", "sports_hours",
    "movies_hours", "kids_hours", "days_since_last_login", "complaints", "campaign_responses",
    "discount_active", "satisfaction_score", "email_opt_in", "country_code", "account_ref",
    "cancel_request_flag",
]  # fmt: skip
CONFIG = DemoConfig({"uk": 4000, "de": 2500}, months=8, seed=11)


def _frames(config: DemoConfig, market: str) -> list[pd.DataFrame]:
    return [frame for _, frame in generate_market(config, market)]


@pytest.fixture(scope="module")
def uk() -> list[pd.DataFrame]:
    return _frames(CONFIG, "uk")


def _panel(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Snapshots stacked, with each customer's holdings one month on and presence two months on."""
    car = pd.concat(frames, ignore_index=True)
    month = {d: k for k, d in enumerate(sorted(car["snapshot_date"].unique()))}
    car["month"] = car["snapshot_date"].map(month)
    held = ["base_tier", "addon_sports", "addon_movies", "addon_kids"]
    nxt = car[["customer_id", "month", *held]].assign(month=lambda f: f["month"] - 1)
    car = car.merge(nxt, on=["customer_id", "month"], how="left", suffixes=("", "_next"))
    later = car[["customer_id", "month"]].assign(month=lambda f: f["month"] - 2, present_2=True)
    merged = car.merge(later, on=["customer_id", "month"], how="left")
    return merged.assign(present_2=merged["present_2"].notna())


@pytest.fixture(scope="module")
def panel(uk: list[pd.DataFrame]) -> pd.DataFrame:
    return _panel(uk)


def test_same_config_gives_identical_frames_and_another_seed_does_not() -> None:
    config = DemoConfig({"it": 800}, months=3, seed=3)
    first, second = _frames(config, "it"), _frames(config, "it")
    other = _frames(DemoConfig({"it": 800}, months=3, seed=4), "it")
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not first[-1]["viewing_hours"].equals(other[-1]["viewing_hours"]), "the seed must matter"


def test_a_market_does_not_depend_on_the_other_markets_of_the_config() -> None:
    alone = _frames(DemoConfig({"de": 2500}, months=2, seed=11), "de")
    together = _frames(CONFIG, "de")[:2]
    for a, b in zip(alone, together, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_every_snapshot_meets_the_contract(uk: list[pd.DataFrame]) -> None:
    dates = [frame["snapshot_date"].iloc[0].date() for frame in uk]
    assert dates == CONFIG.snapshot_dates()
    assert all(d.day == 1 for d in dates)
    for frame, day in zip(uk, dates, strict=True):
        validate_car(frame, CONTRACT, f"uk {day}")
        assert list(frame.columns[: len(CONTRACT.columns)]) == list(CONTRACT.columns)
        assert set(EXTRA_COLUMNS) <= set(frame.columns)
    assert len(uk[0]) == CONFIG.markets["uk"], "the first snapshot holds the configured customers"


def test_columns_hold_realistic_values_and_dirt(uk: list[pd.DataFrame]) -> None:
    frame = uk[-1]
    assert frame["customer_id"].str.fullmatch(r"UK\d{8}").all()
    assert set(frame["base_tier"]) == {"basic", "standard", "premium"}
    assert set(frame["contract_type"]) == {"monthly", "annual"}
    for column in ["addon_sports", "addon_movies", "addon_kids", "discount_active", "email_opt_in"]:
        assert set(frame[column]) == {0, 1}, column
    assert 0.6 < frame["satisfaction_score"].isna().mean() < 0.8
    assert 0.05 < frame["income_band"].isna().mean() < 0.2
    assert frame["country_code"].nunique() == 1
    everything = pd.concat(uk)
    assert everything["account_ref"].is_unique, "account_ref is an ID-like column, unique per row"
    premium = frame["base_tier"] == "premium"
    assert frame.loc[premium, "viewing_hours"].median() > 1.1 * frame.loc[~premium, "viewing_hours"].median()
    sports = frame["addon_sports"] == 1
    assert frame.loc[sports, "sports_hours"].median() > 2 * frame.loc[~sports, "sports_hours"].median()


def test_customers_persist_with_stable_ids_while_some_churn_and_some_join(uk: list[pd.DataFrame]) -> None:
    for before, after in itertools.pairwise(uk):
        old, new = set(before["customer_id"]), set(after["customer_id"])
        stayed, left, joined = old & new, old - new, new - old
        assert 0.003 < len(left) / len(old) < 0.05, "some customers leave every month"
        assert len(joined) > 0
        b = before.set_index("customer_id").loc[sorted(stayed)]
        a = after.set_index("customer_id").loc[sorted(stayed)]
        assert (a["tenure_months"] == b["tenure_months"] + 1).all()
        assert (a["gender"] == b["gender"]).all()
        assert (a["region"] == b["region"]).all()
        assert (after.set_index("customer_id").loc[sorted(joined), "tenure_months"] == 0).all()
    first_ids = set(uk[0]["customer_id"])
    newest_at_start = max(int(cid[2:]) for cid in first_ids)
    assert all(int(cid[2:]) > newest_at_start for cid in set(uk[-1]["customer_id"]) - first_ids)


def test_monthly_movement_rates_are_plausible(panel: pd.DataFrame) -> None:
    seen = panel[panel["base_tier_next"].notna()]
    not_premium = seen[seen["base_tier"] != "premium"]
    upgrade = (not_premium["base_tier_next"] == "premium").mean()
    take_up = (seen.loc[seen["addon_sports"] == 0, "addon_sports_next"] == 1).mean()
    churn = 1 - panel.loc[panel["month"] < panel["month"].max(), "base_tier_next"].notna().mean()
    assert 0.01 < churn < 0.03 and 0.01 < upgrade < 0.04 and 0.01 < take_up < 0.05, (churn, upgrade, take_up)


def test_movements_depend_on_the_features(panel: pd.DataFrame) -> None:
    labelled = panel[panel["month"] <= panel["month"].max() - 2]
    churners, stayers = labelled[~labelled["present_2"]], labelled[labelled["present_2"]]
    assert len(churners) > 300
    assert churners["late_payments"].mean() > 1.5 * stayers["late_payments"].mean()
    assert churners["support_calls"].mean() > 1.2 * stayers["support_calls"].mean()
    assert churners["viewing_hours"].median() < 0.85 * stayers["viewing_hours"].median()
    assert churners["cancel_request_flag"].mean() > 0.8 > 0.01 > stayers["cancel_request_flag"].mean()
    eligible = panel[(panel["base_tier"] != "premium") & panel["base_tier_next"].notna()]
    upgraders = eligible["base_tier_next"] == "premium"
    assert (
        eligible.loc[upgraders, "viewing_hours"].median()
        > 1.2 * eligible.loc[~upgraders, "viewing_hours"].median()
    )
    without = panel[(panel["addon_sports"] == 0) & panel["addon_sports_next"].notna()]
    takers = without["addon_sports_next"] == 1
    assert without.loc[takers, "sports_hours"].median() > 1.5 * without.loc[~takers, "sports_hours"].median()


def _profile(churn_offset: float) -> MarketProfile:
    return MarketProfile(
        regions=("north", "south"), region_weights=(0.5, 0.5), region_churn=(0.0, 0.0),
        churn_offset=churn_offset,
    )  # fmt: skip


def _churn_rate(frames: list[pd.DataFrame]) -> float:
    ids = [set(frame["customer_id"]) for frame in frames]
    return float(np.mean([len(a - b) / len(a) for a, b in itertools.pairwise(ids)]))


def test_rates_differ_between_markets() -> None:
    config = DemoConfig(
        {"low": 3000, "high": 3000}, months=5, profiles={"low": _profile(-0.7), "high": _profile(0.7)}
    )
    low, high = _churn_rate(_frames(config, "low")), _churn_rate(_frames(config, "high"))
    assert high > 2 * low, (low, high)


def test_derived_profiles_are_stable_and_differ_between_markets() -> None:
    assert derive_profile("uk", 7) == derive_profile("uk", 7)
    assert derive_profile("uk", 7) != derive_profile("de", 7)
    assert derive_profile("uk", 7) != derive_profile("uk", 8)


def test_drift_changes_distributions_only_from_drift_from_and_only_in_the_drift_market() -> None:
    base = DemoConfig({"uk": 2000, "de": 2000}, months=5, seed=5)
    drift_from = dt.date(2024, 4, 1)
    shift = DriftShift(churn=1.0)
    drifted = DemoConfig(
        {"uk": 2000, "de": 2000}, months=5, seed=5, drift_from=drift_from, drift_markets=("uk",), drift=shift
    )
    for plain, shifted in zip(_frames(base, "de"), _frames(drifted, "de"), strict=True):
        pd.testing.assert_frame_equal(plain, shifted)
    for plain, shifted in zip(_frames(base, "uk"), _frames(drifted, "uk"), strict=True):
        if plain["snapshot_date"].iloc[0].date() < drift_from:
            pd.testing.assert_frame_equal(plain, shifted)
            continue
        assert shifted["viewing_hours"].median() < 0.85 * plain["viewing_hours"].median()
        assert shifted["arpu"].mean() > 1.05 * plain["arpu"].mean()
        assert shifted["late_payments"].mean() > 1.2 * plain["late_payments"].mean()
        assert shifted["discount_active"].mean() > plain["discount_active"].mean() + 0.15
    leaving, leaving_without_drift = (
        shifted["cancel_request_flag"].mean(),
        plain["cancel_request_flag"].mean(),
    )
    assert leaving > 1.5 * leaving_without_drift, "the drift raises the churn rate"


def test_write_landing_lays_out_one_file_per_market_and_snapshot(tmp_path: Path) -> None:
    config = DemoConfig({"uk": 300, "de": 200}, months=3)
    paths = write_landing(config, tmp_path)
    assert len(paths) == 6
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        f"{m}/car_{d.isoformat()}.parquet" for m in ("uk", "de") for d in config.snapshot_dates()
    ), "exactly the snapshot files, no temporary file left behind"
    assert all(SNAPSHOT_FILE.match(p.name) for p in paths)
    assert pq.read_schema(paths[0]).field("snapshot_date").type == pa.date32()
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    write_landing(config, tmp_path)
    assert digest == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths], "byte-identical rerun"
    validate_car(pd.read_parquet(paths[-1]), CONTRACT, str(paths[-1]))


def test_write_landing_as_csv(tmp_path: Path) -> None:
    config = DemoConfig({"uk": 300}, months=2, file_format="csv")
    paths = write_landing(config, tmp_path)
    assert [p.name for p in paths] == ["car_2024-01-01.csv", "car_2024-02-01.csv"]
    frame = pd.read_csv(paths[1], encoding="utf-8")
    assert frame["snapshot_date"].iloc[0] == "2024-02-01"
    validate_car(frame, CONTRACT, str(paths[1]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"markets": {"UK": 10}}, "market code"),
        ({"markets": {"uk": 0}}, "at least one customer"),
        ({"drift_markets": ("fr",)}, "drift market 'fr'"),
        ({"start": dt.date(2024, 1, 15)}, "first of a month"),
        ({"months": 0}, "months"),
    ],
)
def test_invalid_configs_are_refused_with_the_reason(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoConfig(**{"markets": {"uk": 10}, **changes})


# --- faults -----------------------------------------------------------------------------------
SNAPSHOT = dt.date(2024, 5, 1)
CONTRACT_FAULTS = ["missing_column", "renamed_column", "wrong_type", "duplicate_keys", "empty",
                   "negative_counts", "future_date"]  # fmt: skip


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    config = DemoConfig({"fr": 400}, months=1, start=SNAPSHOT)
    return next(generate_market(config, "fr"))[1]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8") if path.suffix == ".csv" else pd.read_parquet(path)


def test_every_fault_kind_is_documented() -> None:
    assert len(FAULT_KINDS) == 13
    assert all(FAULT_KINDS.values())


@pytest.mark.parametrize("kind", CONTRACT_FAULTS)
def test_contract_faults_fail_validation(kind: str, tmp_path: Path, good: pd.DataFrame) -> None:
    path = write_faulty_file(kind, tmp_path, "fr", SNAPSHOT, base=good)
    assert path == tmp_path / "fr" / "car_2024-05-01.parquet"
    with pytest.raises(ContractError, match=str(path.name)):
        validate_car(_read(path), CONTRACT, str(path))


def test_contract_faults_break_the_stated_column(tmp_path: Path, good: pd.DataFrame) -> None:
    def broken(kind: str) -> pd.DataFrame:
        return _read(write_faulty_file(kind, tmp_path / kind, "fr", SNAPSHOT, base=good))

    assert "arpu" not in broken("missing_column")
    assert "viewing_hrs" in broken("renamed_column")
    assert "viewing_hours" not in broken("renamed_column")
    assert broken("wrong_type")["sessions"].isin(["unknown", "n/a"]).any()
    assert broken("duplicate_keys").duplicated(["customer_id", "snapshot_date"]).sum() == 20
    assert len(broken("empty")) == 0
    assert list(broken("empty").columns) == list(good.columns)
    assert (broken("negative_counts")["support_calls"] < 0).sum() == 12
    assert (pd.to_datetime(broken("future_date")["snapshot_date"]).dt.date > dt.date.today()).all()


def test_unreadable_faults_cannot_be_read(tmp_path: Path, good: pd.DataFrame) -> None:
    truncated = write_faulty_file("truncated_parquet", tmp_path, "fr", SNAPSHOT, base=good)
    with pytest.raises(pa.ArrowInvalid):
        pd.read_parquet(truncated)
    encoded = write_faulty_file("bad_encoding_csv", tmp_path, "fr", SNAPSHOT, base=good)
    assert encoded.suffix == ".csv"
    assert "münchen".encode("latin-1") in encoded.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        pd.read_csv(encoded, encoding="utf-8")
    partial = write_faulty_file("half_written", tmp_path, "fr", SNAPSHOT, base=good)
    assert partial.name == "car_2024-05-01.parquet.part"
    assert not SNAPSHOT_FILE.match(partial.name)
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(partial)


def test_content_faults_pass_the_contract_but_break_their_check(tmp_path: Path, good: pd.DataFrame) -> None:
    def broken(kind: str) -> pd.DataFrame:
        frame = _read(write_faulty_file(kind, tmp_path / kind, "fr", SNAPSHOT, base=good))
        return validate_car(frame, CONTRACT, kind)

    assert broken("all_null_feature")["viewing_hours"].isna().all()
    assert broken("category_explosion")["region"].nunique() > good["region"].nunique() + 100
    assert len(broken("volume_halved")) == len(good) // 2


def test_faults_without_a_base_generate_a_small_snapshot_deterministically(tmp_path: Path) -> None:
    first = write_faulty_file("negative_counts", tmp_path / "a", "nl", dt.date(2024, 3, 1), seed=2)
    second = write_faulty_file("negative_counts", tmp_path / "b", "nl", dt.date(2024, 3, 1), seed=2)
    assert first.read_bytes() == second.read_bytes()
    frame = pd.read_parquet(first)
    assert len(frame) == 1000
    assert (frame["support_calls"] < 0).sum() == 30
    assert frame["customer_id"].str.startswith("NL").all()


# --- signal: the six demo specs are learnable, but not trivially ------------------------------
def _addon(name: str) -> tuple:
    col = f"addon_{name}"
    return 1, lambda p: (p[col] == 0) & p[f"{col}_next"].notna(), lambda p: p[f"{col}_next"] == 1


SPEC_TARGETS = {  # model spec -> (horizon, eligible rows, positive rows), as in model_specs/
    "upgrade_premium": (
        1,
        lambda p: (p["base_tier"] != "premium") & (p["tenure_months"] >= 2) & p["base_tier_next"].notna(),
        lambda p: p["base_tier_next"] == "premium",
    ),
    "downgrade_tier": (
        1,
        lambda p: (p["base_tier"] == "premium") & p["base_tier_next"].notna(),
        lambda p: p["base_tier_next"].isin(["standard", "basic"]),
    ),
    "churn": (2, lambda p: p["base_tier"].notna(), lambda p: ~p["present_2"]),
    **{f"addon_{name}": _addon(name) for name in ("sports", "movies", "kids")},
}
NOT_FEATURES = ["customer_id", "snapshot_date", "account_ref", "country_code", "cancel_request_flag"]


@pytest.fixture(scope="module")
def signal_panel() -> pd.DataFrame:
    return _panel(_frames(DemoConfig({"es": 12000}, months=7, seed=21), "es"))


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    """Snapshot columns as numbers: log hours and counts, median-filled gaps, one-hot categories."""
    columns = [c for c in frame.columns if c not in NOT_FEATURES and not c.endswith(("_next", "_2", "month"))]
    numbers = frame[columns].select_dtypes(exclude="str").astype("float64")
    skewed = [c for c in numbers.columns if c.endswith("hours") or c in ("sessions", "days_since_last_login")]
    numbers[skewed] = np.log1p(numbers[skewed])
    categories = pd.get_dummies(frame[columns].select_dtypes(include="str"), dummy_na=True, dtype="float64")
    return pd.concat([numbers.fillna(numbers.median()), categories], axis=1)


@pytest.mark.parametrize("spec", list(SPEC_TARGETS))
def test_each_demo_spec_has_a_learnable_but_imperfect_signal(spec: str, signal_panel: pd.DataFrame) -> None:
    horizon, eligible, positive = SPEC_TARGETS[spec]
    test_month = signal_panel["month"].max() - horizon
    rows = signal_panel[eligible(signal_panel) & (signal_panel["month"] <= test_month)]
    target = positive(rows).to_numpy()
    train, test = (rows["month"] < test_month).to_numpy(), (rows["month"] == test_month).to_numpy()
    features = _features(rows)
    scaled = (features - features[train].mean()) / (features[train].std() + 1e-9)
    model = LogisticRegression(C=0.5, max_iter=500).fit(scaled[train], target[train])
    auc = roc_auc_score(target[test], model.predict_proba(scaled[test])[:, 1])
    assert target[test].sum() >= 60, f"{spec}: too few test positives for a stable AUC"
    assert 0.68 < auc < 0.88, f"{spec}: out-of-time AUC {auc:.3f} on snapshot features"


# --- seasonality and trend: the same customers decide differently by calendar month -----------
def _moves_in(month_of_year: int, index: int = 0) -> Moves:
    profile = derive_profile("uk", 7)
    pop = new_customers(np.random.default_rng(1), profile, 20_000, first_num=1, stock=True)
    ctx = MonthContext(index, month_of_year, NO_DRIFT)
    features = observe(np.random.default_rng(2), pop, profile, ctx)
    return decide(np.random.default_rng(3), pop, features, profile, ctx)


def test_december_peaks_churn_and_upgrades_and_a_gentle_trend_raises_them() -> None:
    june, december, june_later = _moves_in(6), _moves_in(12), _moves_in(6, index=24)
    assert december.churn.sum() > 1.2 * june.churn.sum()
    assert (december.tier == 2).sum() > (june.tier == 2).sum()
    assert june.churn.sum() < june_later.churn.sum() < 1.5 * june.churn.sum()
