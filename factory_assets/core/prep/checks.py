"""What the `model_samples` checks verify on a stored sample, per cell (no Dagster here)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from factory_assets.core.names import Table
from factory_assets.core.prep.sql import CUSTOMER, SNAPSHOT, TARGET
from factory_assets.core.warehouse import Warehouse

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SampleFacts:
    """Rows, positives and snapshot range per split of a stored sample, and its overlaps."""

    cell: str
    rows: dict[str, int]
    positives: dict[str, int]
    first: dict[str, pd.Timestamp | None]
    last: dict[str, pd.Timestamp | None]
    duplicated_keys: int
    cross_sectional: bool

    def short_splits(self, minimum: int) -> list[str]:
        """Splits with fewer than `minimum` positives."""
        return [s for s in SPLITS if self.positives[s] < minimum]

    def out_of_time(self) -> bool:
        """Train and validation strictly before the test (always true for a cross-sectional sample)."""
        if self.cross_sectional:
            return True
        test_first = self.first["test"]
        earlier = [self.last[s] for s in ("train", "validation") if self.last[s] is not None]
        return test_first is not None and all(day < test_first for day in earlier)


def sample_facts(warehouse: Warehouse, market: str, model: str) -> SampleFacts:
    """Read the facts the checks need from the cell's partition of `prep.samples` and its summary row."""
    table, cell = Table.SAMPLES, [market, model]

    def read(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, int, list[tuple]]:
        per_split = (
            con.execute(
                f"select split, count(*) as n, sum({TARGET}) as p, min({SNAPSHOT}) as a, "
                f"max({SNAPSHOT}) as b from {table} where market = ? and model = ? group by split",
                cell,
            )
            .df()
            .set_index("split")
        )
        duplicated = con.execute(
            f"select count(*) from (select {CUSTOMER}, {SNAPSHOT} from {table} where market = ? "
            "and model = ? group by all having count(*) > 1)",
            cell,
        ).fetchone()[0]
        summary = con.execute(
            f"select cross_sectional from {Table.SAMPLE_SUMMARY} where market = ? and model = ?",
            [market, model],
        ).fetchall()
        return per_split, int(duplicated), summary

    per_split, duplicated, summary = warehouse.execute(read)

    def get(split: str, column: str, default: object) -> object:
        return per_split.loc[split, column] if split in per_split.index else default

    return SampleFacts(
        cell=f"{market}/{model}",
        rows={s: int(get(s, "n", 0)) for s in SPLITS},
        positives={s: int(get(s, "p", 0)) for s in SPLITS},
        first={s: get(s, "a", None) for s in SPLITS},
        last={s: get(s, "b", None) for s in SPLITS},
        duplicated_keys=duplicated,
        cross_sectional=bool(summary[0][0]) if summary else False,
    )
