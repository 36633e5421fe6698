"""Partitions, declared once: markets (dynamic), models (from the specs), and market x model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from factory_assets.core.specs import KEY_PATTERN
from factory_assets.specs_registry import SPECS

markets_partitions = dg.DynamicPartitionsDefinition(name="markets")
models_partitions = dg.StaticPartitionsDefinition(sorted(SPECS))
cell_partitions = dg.MultiPartitionsDefinition({"market": markets_partitions, "model": models_partitions})


@dataclass(frozen=True, order=True)
class Cell:
    """One market x model cell of the factory grid."""

    market: str
    model: str

    @property
    def key(self) -> dg.MultiPartitionKey:
        """The Dagster partition key of this cell."""
        return dg.MultiPartitionKey({"market": self.market, "model": self.model})

    def __str__(self) -> str:
        return f"{self.market}/{self.model}"


def is_valid_market(code: str) -> bool:
    """Market codes become partition keys and table names: lower-case letters, digits, '_'."""
    return bool(KEY_PATTERN.match(code))


def decode_cell(key: str | dg.MultiPartitionKey) -> Cell:
    """Decode a market x model partition key (object or 'market|model' string)."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        market, model = key.split("|")
        dims = {"market": market, "model": model}
    return Cell(market=dims["market"], model=dims["model"])


def cells_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[Cell]:
    """Every cell a run (single partition or range) covers, in key order."""
    keys: Sequence[str] = context.partition_keys
    return [decode_cell(k) for k in keys]


def market_row_range(market: str) -> dg.PartitionKeyRange:
    """The key range that covers one market's whole row of models (one run per market)."""
    models = models_partitions.get_partition_keys()
    return dg.PartitionKeyRange(
        start=str(Cell(market, models[0]).key), end=str(Cell(market, models[-1]).key)
    )
