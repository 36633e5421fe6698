"""Every warehouse table and every stage of the factory, named once.

Tables with a fixed name are members of `Table` (per-cell data lives in partitions of them, keyed by
market and model); the per-market CAR table is built by `car_table`. Stage names are the asset names
of the pipeline and the `stage` column of `ops.cell_status`. The members are plain `str` constants,
not enum members: they go into SQL, pandas frames, Dagster asset keys and metadata, and Dagster's
serialiser refuses enums it does not know.
"""

from __future__ import annotations

from typing import Final

from factory_assets.core.warehouse import check_identifier


class Table:
    """The warehouse tables with a fixed name, grouped by schema."""

    CAR_FILES: Final = "ops.car_files"
    CAR_CHECK_RESULTS: Final = "ops.car_check_results"
    CAR_VERDICTS: Final = "ops.car_snapshot_verdicts"
    CELL_STATUS: Final = "ops.cell_status"
    SCORE_CHECK_RESULTS: Final = "ops.score_check_results"
    FACTORY_STATUS: Final = "ops.factory_status"
    HISTORY: Final = "prep.history"
    HISTORY_SNAPSHOTS: Final = "prep.history_snapshots"
    HISTORY_FEATURES: Final = "prep.history_features"
    FRAMES: Final = "prep.frames"
    FRAME_COLUMNS: Final = "prep.frame_columns"
    SAMPLES: Final = "prep.samples"
    VARIABLE_DECISIONS: Final = "prep.variable_decisions"
    SAMPLE_SUMMARY: Final = "prep.sample_summary"
    SAMPLE_RATES: Final = "prep.sample_rates"
    MODELS: Final = "registry.models"
    RETRAIN_EVALUATIONS: Final = "registry.retrain_evaluations"
    DECISIONS: Final = "registry.decisions"
    SCORE_REFERENCES: Final = "registry.score_references"
    REALISED_PERFORMANCE: Final = "registry.realised_performance"
    DRIFT: Final = "factory.drift"
    SCORES: Final = "scores.scores"
    SCORE_HISTORY: Final = "scores.score_history"
    RELEASES: Final = "release.releases"


def car_table(market: str) -> str:
    """A market's CAR snapshots: `car.<market>`."""
    return check_identifier(f"car.{market}")


def partition_label(table: str, **keys: str) -> str:
    """A partition of a table as the UI shows it: `prep.frames[market=uk, model=churn]`."""
    return f"{table}[{', '.join(f'{k}={v}' for k, v in keys.items())}]"


class Stage:
    """The stages in flow order; each is the name of its asset (Data Checker 1 is market-wide)."""

    DATA_CHECKER_1: Final = "data_checker_1"
    TRAINING_FRAME: Final = "training_frame"
    MODEL_SAMPLES: Final = "model_samples"
    DRIFT_REPORT: Final = "drift_report"
    CHALLENGER_MODEL: Final = "challenger_model"
    CHAMPION_MODEL: Final = "champion_model"
    SCORES: Final = "scores"
    RELEASED_SCORES: Final = "released_scores"


FACTORY_STATUS_ASSET = "factory_status"
"""The status grid's asset (not a per-cell stage)."""
CELL_STAGES: tuple[str, ...] = (
    Stage.TRAINING_FRAME,
    Stage.MODEL_SAMPLES,
    Stage.DRIFT_REPORT,
    Stage.CHALLENGER_MODEL,
    Stage.CHAMPION_MODEL,
    Stage.SCORES,
    Stage.RELEASED_SCORES,
)
"""The model-level stages, in pipeline order."""
