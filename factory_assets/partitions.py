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


MARKET_RULE = (
    "a lower-case letter, then at most 39 lower-case letters, digits or '_' "
    f"({KEY_PATTERN.pattern}), e.g. 'uk' or 'de_north'"
)
"""The rule a market code follows, in words, for error messages."""


class InvalidMarketError(ValueError):
    """A market code that cannot be a partition key and a table name."""


def is_valid_market(code: str) -> bool:
    """Market codes become partition keys and table names: lower-case letters, digits, '_'."""
    return bool(KEY_PATTERN.match(code))


def check_market(code: str, where: str) -> str:
    """`code` if it is a valid market code, else `InvalidMarketError` naming it, `where` and the rule.

    A market added by hand (the Dagster UI, `dagster instance`, a script) is not checked by Dagster;
    this turns the warehouse's later identifier error into one that says what to do.
    """
    if not is_valid_market(code):
        raise InvalidMarketError(
            f"{where}: market {code!r} is not a valid market code: it must be {MARKET_RULE}; "
            f"delete the partition {code!r} of '{markets_partitions.name}' and add the market under a "
            "valid code (its landing folder must have the same name)"
        )
    return code


def decode_cell(key: str | dg.MultiPartitionKey) -> Cell:
    """Decode a market x model partition key (object or 'market|model' string)."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        market, model = key.split("|")
        dims = {"market": market, "model": model}
    check_market(dims["market"], f"partition {str(key)!r}")
    return Cell(market=dims["market"], model=dims["model"])


def cells_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[Cell]:
    """Every cell a run (single partition or range) covers, in key order."""
    keys: Sequence[str] = context.partition_keys
    return [decode_cell(k) for k in keys]


def market_row_range(market: str) -> dg.PartitionKeyRange:
    """The key range that covers one market's whole row of models (one run per market)."""
    models = models_partitions.get_partition_keys()
    return dg.PartitionKeyRange(start=str(Cell(market, models[0]).key), end=str(Cell(market, models[-1]).key))
