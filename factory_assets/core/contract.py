"""The CAR column contract (data, in `config/car_contract.yaml`) and its pandera schema."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

import pandas as pd
import pandera.pandas as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CONTRACT_PATH = Path(__file__).resolve().parents[2] / "config" / "car_contract.yaml"
ColumnType = Literal["string", "date", "int", "float", "category", "flag"]


class ContractError(ValueError):
    """A CAR that breaks the contract; the message names the source and the failing rules."""


class ColumnRule(BaseModel):
    """What one contract column must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    role: Literal["key", "product", "feature", "label"] = "feature"
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    pattern: str | None = None


class CarContract(BaseModel):
    """Required columns with their types and rules; extra columns are allowed (features)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[str] = Field(min_length=2, max_length=2)
    columns: dict[str, ColumnRule]

    @property
    def product_columns(self) -> list[str]:
        """Holdings columns: the ones a movement target can be defined on."""
        return [name for name, rule in self.columns.items() if rule.role == "product"]

    @property
    def label_columns(self) -> frozenset[str]:
        """Label columns (known only up to a date): never features, checked as labels."""
        return frozenset(name for name, rule in self.columns.items() if rule.role == "label")

    @property
    def customer_key(self) -> str:
        """The customer identifier column."""
        return self.keys[0]

    @property
    def date_key(self) -> str:
        """The snapshot date column."""
        return self.keys[1]


def load_contract(path: Path = DEFAULT_CONTRACT_PATH) -> CarContract:
    """Read and validate the contract file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return CarContract.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(f"invalid CAR contract {path}: {exc}") from exc


_PANDERA_TYPES = {
    "string": str,
    "date": "datetime64[us]",
    "int": "Int64",
    "float": "Float64",
    "category": str,
    "flag": "Int64",
}


def _checks(rule: ColumnRule) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if rule.min is not None:
        checks.append(pa.Check.ge(rule.min))
    if rule.max is not None:
        checks.append(pa.Check.le(rule.max))
    if rule.values is not None:
        checks.append(pa.Check.isin(rule.values))
    if rule.type == "flag":
        checks.append(pa.Check.isin([0, 1]))
    if rule.pattern is not None:
        checks.append(pa.Check.str_matches(rule.pattern))
    return checks


def build_schema(contract: CarContract, today: dt.date | None = None) -> pa.DataFrameSchema:
    """A pandera schema for one CAR snapshot: types coerced, keys unique, no future snapshots."""
    today = today or dt.date.today()
    columns = {
        name: pa.Column(_PANDERA_TYPES[rule.type], checks=_checks(rule), nullable=rule.nullable, coerce=True)
        for name, rule in contract.columns.items()
    }
    not_future = pa.Check(
        lambda s: s.dt.date <= today, element_wise=False, error=f"snapshot_date after {today}"
    )
    columns[contract.date_key] = pa.Column("datetime64[us]", checks=[not_future], nullable=False, coerce=True)
    return pa.DataFrameSchema(
        columns, strict=False, unique=list(contract.keys), name="car_snapshot", report_duplicates="all"
    )


def validate_car(
    frame: pd.DataFrame, contract: CarContract, source: str, today: dt.date | None = None
) -> pd.DataFrame:
    """Validate lazily and coerce; raise `ContractError` naming `source` and every failed rule."""
    if frame.empty:
        raise ContractError(f"{source}: the CAR file holds no rows")
    frame = frame.reset_index(drop=True)  # pandera cannot report duplicate keys over a duplicate index
    try:
        return build_schema(contract, today).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise ContractError(f"{source}: {summarise_failures(exc.failure_cases)}") from exc


def summarise_failures(failure_cases: pd.DataFrame, limit: int = 12) -> str:
    """One line per failed (column, check) with the count and a few failing values."""
    parts = []
    grouped = failure_cases.groupby(["column", "check"], dropna=False, sort=False)
    for (column, check), group in list(grouped)[:limit]:
        cases = group["failure_case"].tolist()
        if check == "column_in_dataframe":
            parts.append(f"required column(s) missing: {', '.join(sorted(map(str, cases)))}")
            continue
        examples = ", ".join(repr(v) for v in cases[:3])
        parts.append(f"column '{column}' fails '{check}' in {len(group)} case(s), e.g. {examples}")
    return "; ".join(parts)


SNAPSHOT_FILE = re.compile(r"^car_(\d{4}-\d{2}-\d{2})\.(parquet|csv)$")
