"""Jobs over the model-level assets, and the operator's release override and withdrawal jobs.

One run of a model-level job carries a market's whole row of models; the operator's jobs are in
`factory_assets.interventions`.
"""

from __future__ import annotations

import dagster as dg

from factory_assets import interventions
from factory_assets.core.names import FACTORY_STATUS_ASSET, Stage
from factory_assets.partitions import cell_partitions, market_row_range

ROW_SELECTION = dg.AssetSelection.groups("prepare", "factory") | dg.AssetSelection.assets(
    Stage.RELEASED_SCORES
)

factory_row_job = dg.define_asset_job(
    "factory_row_job",
    selection=ROW_SELECTION,
    partitions_def=cell_partitions,
    description="Prepare, sample, check drift, retrain if triggered, decide, score and release.",
)
retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(
        Stage.DRIFT_REPORT, Stage.CHALLENGER_MODEL, Stage.CHAMPION_MODEL, Stage.SCORES, Stage.RELEASED_SCORES
    ),
    partitions_def=cell_partitions,
    description="Re-evaluate retrain triggers on the prepared data, then decide, score and release.",
)
scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets(Stage.SCORES, Stage.RELEASED_SCORES),
    partitions_def=cell_partitions,
    description="Score the latest snapshot with the current champions and release what passes.",
)
factory_status_job = dg.define_asset_job(
    "factory_status_job",
    selection=dg.AssetSelection.assets(FACTORY_STATUS_ASSET),
    description="Rebuild the market x model status grid.",
)

JOBS = [factory_row_job, retrain_job, scoring_job, factory_status_job, *interventions.JOBS]


def row_tags(market: str) -> dict[str, str]:
    """Run tags that make one run cover a market's whole row of models."""
    key_range = market_row_range(market)
    return {
        "dagster/asset_partition_range_start": key_range.start,
        "dagster/asset_partition_range_end": key_range.end,
        "factory/market": market,
    }
