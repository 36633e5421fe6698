"""Issue 20's July/August scenario on the demo generator, through the real assets and resources.

One demo market (`uk`, 1,500 customers, 9 months, seed 7) is ingested and its `churn` cell run to a
release (June); then the demo's default drift lands for one month (July) and one more (August),
each ingested and run with `dg.materialize` over the real assets: drift report, challenger training
(both families), champion decision, scoring, Data Checker 2 and the release gate.

- July: drift triggers a retrain; the challenger is not significantly better (AUC +0.045, DeLong
  p 0.07 >= 0.05), the champion is kept, and the same model's scores are held back against its June
  release (`distribution_stable` PSI about 0.53, reference "last release ... same model").
- August: a challenger replaces the champion (AUC +0.095, p < 1e-6); its decision records its own
  scores on the July population, and its August scores match them (PSI about 0.06): released.

The decisions are **natural**: the spec's own replacement rules on seeded data. One threshold is
relaxed for August only: `score_checks.max_mean_ratio` 2.0 -> 3.0. The demo's drift multiplies late
payments and support calls by e (2.7) while moving churn's log-odds by only +0.2, so the new
champion, trained on labels that end before the drift, predicts about 2.3 times the realised rate
of June (0.082 vs 0.035) and `mean_near_expected` would hold it back. That rule is right to flag it
and is not what this scenario is about: it tests the reference of `distribution_stable`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pytest
from support.reliability import new_instance, run_cell, run_ingest, sha256_file

from factory_assets.core.model.score_reference import find_score_reference
from factory_assets.core.names import Table
from factory_assets.core.paths import FactoryPaths
from factory_assets.core.release.reader import ReleaseReader
from factory_assets.core.release.score_checks import psi
from factory_assets.core.release.store import ReleaseManifest, ReleaseStore
from factory_assets.core.specs import ModelSpec
from factory_assets.core.warehouse import Warehouse
from factory_assets.demo.car import DemoConfig, add_months, generate_market, snapshot_path, write_landing
from factory_assets.demo.io import write_snapshot
from factory_assets.specs_registry import SPECS

MARKET, MODEL = "uk", "churn"
CUSTOMERS = 1500
MONTHS = 9
START = dt.date(2023, 10, 1)
SEED = 7
JUNE, JULY, AUGUST = (add_months(START, MONTHS - 1 + k) for k in range(3))
AUGUST_MAX_MEAN_RATIO = 3.0
"""August's `mean_near_expected` limit (the spec's is 2.0; see the module docstring)."""


@dataclass(frozen=True)
class Scenario:
    """The factory the three months ran in, and what each month left."""

    paths: FactoryPaths
    months: dict[dt.date, Month]


@dataclass(frozen=True)
class Month:
    """What one month's run left: the cell's decisions and ledger, its check results, what is served."""

    decisions: pd.DataFrame
    ledger: pd.DataFrame
    checks: dict[str, pd.Series]
    served: ReleaseManifest


def drifted(months_after_window: int) -> DemoConfig:
    """The demo market with the default drift from July, `months_after_window` months past June."""
    return DemoConfig(
        markets={MARKET: CUSTOMERS},
        months=MONTHS + months_after_window,
        start=START,
        seed=SEED,
        drift_from=JULY,
        drift_markets=(MARKET,),
    )


def land_drift_month(paths: FactoryPaths, months_after_window: int) -> dt.date:
    """Land the drifted month `months_after_window` after June (as `factory demo` lands July)."""
    *_, (snapshot, frame) = generate_market(drifted(months_after_window), MARKET)
    write_snapshot(frame, snapshot_path(paths.landing, MARKET, snapshot, "parquet"))
    return snapshot


def month_state(paths: FactoryPaths) -> Month:
    wh = Warehouse(paths.warehouse)
    cell = "market = ? and model = ?"
    decisions = wh.query(f"select * from {Table.DECISIONS} where {cell} order by decided_at", [MARKET, MODEL])
    ledger = wh.query(f"select * from {Table.RELEASES} where {cell} order by released_at", [MARKET, MODEL])
    checks = wh.query(f"select * from {Table.SCORE_CHECK_RESULTS} where {cell}", [MARKET, MODEL])
    served = ReleaseReader(paths.releases).get(MARKET, MODEL).manifest
    return Month(decisions, ledger, {str(r["check"]): r for _, r in checks.iterrows()}, served)


def run_month(
    paths: FactoryPaths, instance: dg.DagsterInstance, max_mean_ratio: float | None = None
) -> Month:
    """Ingest what landed and run the cell (with `max_mean_ratio` instead of the spec's, if given)."""
    assert run_ingest(paths, instance, MARKET).success
    spec: ModelSpec = SPECS[MODEL]
    with pytest.MonkeyPatch.context() as patch:
        if max_mean_ratio is not None:
            checks = spec.score_checks.model_copy(update={"max_mean_ratio": max_mean_ratio})
            patch.setitem(SPECS, MODEL, spec.model_copy(update={"score_checks": checks}))
        run_cell(paths, instance, MARKET, MODEL)  # a held-back release fails the run: read the outcome
    return month_state(paths)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """June released, July drifted (champion kept), August drifted (champion replaced)."""
    paths = FactoryPaths(tmp_path_factory.mktemp("model_change") / "data")
    write_landing(
        DemoConfig(markets={MARKET: CUSTOMERS}, months=MONTHS, start=START, seed=SEED), paths.landing
    )
    with new_instance((MARKET,)) as instance:
        months = {JUNE: run_month(paths, instance)}
        assert land_drift_month(paths, 1) == JULY
        months[JULY] = run_month(paths, instance)
        assert land_drift_month(paths, 2) == AUGUST
        months[AUGUST] = run_month(paths, instance, AUGUST_MAX_MEAN_RATIO)
    return Scenario(paths, months)


def test_june_the_first_champion_is_released(scenario):
    june = scenario.months[JUNE]

    assert list(june.decisions["outcome"]) == ["promote"]
    assert list(june.ledger["status"]) == ["released"]
    assert june.served.snapshot_date == str(JUNE)
    assert june.served.model_version == june.decisions.iloc[0]["live_version"]


def test_july_drift_keeps_the_champion_and_holds_its_moved_scores_back(scenario):
    june, july = scenario.months[JUNE], scenario.months[JULY]

    decision = july.decisions.iloc[-1]
    assert len(july.decisions) == 2, "the drift triggered a retrain and a decision"
    assert decision["outcome"] == "keep"
    assert decision["live_version"] == june.served.model_version
    latest = july.ledger.iloc[-1]
    assert latest["status"] == "held_back"
    assert latest["snapshot_date"] == pd.Timestamp(JULY)
    assert latest["serving_release_id"] == june.served.release_id
    stability = july.checks["distribution_stable"]
    assert not stability["passed"]
    assert stability["value"] > stability["threshold"]
    assert stability["reference"].startswith(f"last release {june.served.release_id}")
    assert "same model" in stability["reference"]
    assert july.served == june.served, "the API still serves June"


def test_august_a_replacement_is_released_against_its_own_reference(scenario):
    june, august = scenario.months[JUNE], scenario.months[AUGUST]

    decision = august.decisions.iloc[-1]
    assert len(august.decisions) == 3
    assert decision["outcome"] == "replace"
    assert decision["champion_version"] == june.served.model_version
    new_champion = decision["live_version"]
    assert new_champion != june.served.model_version
    latest = august.ledger.iloc[-1]
    assert latest["status"] == "released", latest["reason"]
    assert latest["snapshot_date"] == pd.Timestamp(AUGUST)
    assert latest["model_version"] == new_champion
    stability = august.checks["distribution_stable"]
    assert stability["passed"]
    assert stability["value"] <= stability["threshold"]
    assert stability["reference"].startswith(f"new champion {new_champion[:12]}'s own scores on {JULY}")
    assert august.checks["ranks_stable"]["reference"] == "none: the champion changed"
    assert august.checks["mean_near_expected"]["threshold"] == AUGUST_MAX_MEAN_RATIO
    assert august.served.release_id == latest["release_id"]
    assert august.served.model_version == new_champion
    assert august.served.snapshot_date == str(AUGUST)


def test_the_replacement_recorded_its_reference_on_july_with_its_decision(scenario):
    decision = scenario.months[AUGUST].decisions.iloc[-1]
    reference = find_score_reference(
        Warehouse(scenario.paths.warehouse), MARKET, MODEL, decision["live_version"]
    )

    assert reference is not None
    assert reference.decision_id == decision["decision_id"]
    assert reference.snapshot_date == JULY
    stored = scenario.paths.models / f"{reference.version}.scores-{JULY:%Y%m%d}.parquet"
    assert sha256_file(stored) == reference.sha256


def test_against_the_previous_champions_june_release_august_would_have_been_held(scenario):
    june, august = scenario.months[JUNE], scenario.months[AUGUST]
    store = ReleaseStore(scenario.paths.releases)

    moved = psi(
        store.load_release(june.served)["probability"].to_numpy(),
        store.load_release(august.served)["probability"].to_numpy(),
    )

    assert moved > SPECS[MODEL].score_checks.max_psi, "the comparison issue 20 replaced holds it back"
