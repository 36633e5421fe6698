"""An external CAR: files a user points at, mapped onto the contract by configuration, not code.

One file (or a folder of files) may hold many markets and snapshots. `ExternalCarMapping` says
which source column is which contract column, how the snapshot date is written and which column
holds the market; `ExternalCarSource` lists the (market, snapshot) pairs and reads each one as a
frame with contract column names, using an in-memory DuckDB over the files (never the warehouse),
so a large export is filtered in DuckDB rather than loaded whole into pandas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from factory_assets.core.car.source import CarReadError
from factory_assets.core.files import file_sha256
from factory_assets.core.specs import KEY_PATTERN


class ExternalMappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


class ExternalCarMapping(BaseModel):
    """How an external CAR maps onto the contract (all names are source column names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="A file, or a folder whose files of `format` together hold the CAR.")
    format: Literal["parquet", "csv"] = Field(description="File format of the source.")
    csv_delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field separator.")
    renames: dict[str, str] = Field(
        default_factory=dict, description="{source column: contract column}; others keep their name."
    )
    customer_column: str = Field(
        "customer_id", description="Contract name of the customer key (read as text, never as a number)."
    )
    date_column: str = Field(description="Source column holding the snapshot date.")
    date_format: str | None = Field(
        None, description="strftime format of the date column (e.g. '%Y%m'); null = ISO dates."
    )
    market_column: str | None = Field(None, description="Source column holding the market.")
    market: str | None = Field(None, description="The one market of the source, if it has no market column.")
    market_codes: dict[str, str] = Field(
        default_factory=dict,
        description="{source market value: market code} (values compared trimmed); others are lower-cased.",
    )
    product_columns: list[str] = Field(
        default_factory=list,
        description="Extra product (holdings) columns, by contract name, that must be present.",
    )
    drop_columns: list[str] = Field(default_factory=list, description="Source columns not to ingest.")

    @model_validator(mode="after")
    def _one_market_source(self) -> ExternalCarMapping:
        if (self.market_column is None) == (self.market is None):
            raise ValueError("give exactly one of 'market_column' and 'market'")
        codes = [*self.market_codes.values(), *([self.market] if self.market else [])]
        bad = [code for code in codes if not KEY_PATTERN.match(code)]
        if bad:
            raise ValueError(f"market codes {bad} are not valid partition keys ({KEY_PATTERN.pattern})")
        return self

    def fingerprint(self) -> str:
        """Hash of the mapping itself: a changed mapping re-ingests the source."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_external_mapping(path: Path) -> ExternalCarMapping:
    """Read a mapping YAML; a relative `path` inside it is relative to the YAML file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ExternalMappingError(f"external CAR mapping {path}: cannot read it: {exc}") from exc
    if not isinstance(raw, dict):
        raise ExternalMappingError(f"external CAR mapping {path}: expected a mapping at the top level")
    try:
        mapping = ExternalCarMapping.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '(top level)'}': {e['msg']}" for e in exc.errors()
        )
        raise ExternalMappingError(f"external CAR mapping {path}: {fields}") from exc
    if not mapping.path.is_absolute():
        mapping = mapping.model_copy(update={"path": (path.parent / mapping.path).resolve()})
    return mapping


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class ExternalCarSource:
    """The (market, snapshot) frames of an external CAR, read through an in-memory DuckDB."""

    mapping: ExternalCarMapping
    _content_hash: str | None = field(default=None, init=False, repr=False)

    def files(self) -> list[Path]:
        """The source files, sorted; an empty or missing source raises `CarReadError`."""
        root = self.mapping.path
        found = sorted(root.glob(f"*.{self.mapping.format}")) if root.is_dir() else [root]
        found = [p for p in found if p.is_file()]
        if not found:
            raise CarReadError(f"external CAR {root}: no {self.mapping.format} file found")
        return found

    def stat_fingerprint(self) -> str:
        """Cheap change detector for the sensor: mapping + (file, mtime, size); opens no file."""
        stats = [(str(p), p.stat().st_mtime, p.stat().st_size) for p in self.files()]
        payload = json.dumps([self.mapping.fingerprint(), stats])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def content_hash(self) -> str:
        """Mapping + file bytes: every snapshot of the source is re-ingested when it changes."""
        if self._content_hash is None:
            parts = [self.mapping.fingerprint(), *(file_sha256(p) for p in self.files())]
            self._content_hash = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
        return self._content_hash

    def _relation_sql(self) -> str:
        paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in self.files())
        if self.mapping.format == "parquet":
            return f"read_parquet([{paths}], union_by_name = true)"
        text_columns = {self._source_name(self.mapping.customer_column), self.mapping.date_column}
        if self.mapping.market_column:
            text_columns.add(self.mapping.market_column)
        types = ", ".join(f"'{c}': 'VARCHAR'" for c in sorted(text_columns))
        delimiter = self.mapping.csv_delimiter.replace("'", "''")
        return (
            f"read_csv([{paths}], header = true, delim = '{delimiter}', encoding = 'utf-8', "
            f"union_by_name = true, types = {{{types}}})"
        )

    def _source_name(self, contract_name: str) -> str:
        inverse = {target: source for source, target in self.mapping.renames.items()}
        return inverse.get(contract_name, contract_name)

    def _market_sql(self) -> tuple[str, list[str]]:
        if self.mapping.market_column is None:
            return "?", [str(self.mapping.market)]
        column = f"trim({_quote(self.mapping.market_column)}::VARCHAR)"
        cases = " ".join("when ? then ?" for _ in self.mapping.market_codes)
        params = [v for value, code in self.mapping.market_codes.items() for v in (value.strip(), code)]
        default = f"lower({column})"
        return (f"case {column} {cases} else {default} end" if cases else default), params

    def _date_sql(self) -> tuple[str, list[str]]:
        column = f"{_quote(self.mapping.date_column)}::VARCHAR"
        if self.mapping.date_format is None:
            return f"try_cast({column} as DATE)", []
        return f"try_strptime({column}, ?)::DATE", [self.mapping.date_format]

    def _query(self, sql: str, params: list[object]) -> pd.DataFrame:
        try:
            with duckdb.connect() as con:
                return con.execute(sql, params).df()
        except duckdb.Error as exc:
            raise CarReadError(f"external CAR {self.mapping.path}: {type(exc).__name__}: {exc}") from exc

    def snapshots(self) -> list[tuple[str, dt.date]]:
        """Every (market code, snapshot date) in the source; an unparsable date raises, naming it."""
        market_sql, market_params = self._market_sql()
        date_sql, date_params = self._date_sql()
        raw = _quote(self.mapping.date_column)
        rows = self._query(
            f"select distinct {market_sql} as market, {date_sql} as snapshot, {raw}::VARCHAR as raw "
            f"from {self._relation_sql()}",
            [*market_params, *date_params],
        )
        unparsed = rows.loc[rows["snapshot"].isna(), "raw"].head(3).tolist()
        if unparsed:
            raise CarReadError(
                f"external CAR {self.mapping.path}: column '{self.mapping.date_column}' values {unparsed} "
                f"do not match date_format '{self.mapping.date_format or 'ISO (YYYY-MM-DD)'}'"
            )
        days = [pd.Timestamp(d).date() for d in rows["snapshot"]]
        return sorted(set(zip(rows["market"].astype(str), days, strict=True)))

    def markets(self) -> list[str]:
        """Market codes in the source (valid or not: the caller reports invalid ones)."""
        return sorted({market for market, _ in self.snapshots()})

    def read(self, market: str, snapshot_date: dt.date) -> pd.DataFrame:
        """One (market, snapshot) as a frame with contract column names and a `snapshot_date`."""
        market_sql, market_params = self._market_sql()
        date_sql, date_params = self._date_sql()
        excluded = {self.mapping.date_column, *self.mapping.drop_columns}
        if self.mapping.market_column:
            excluded.add(self.mapping.market_column)
        exclude = ", ".join(_quote(c) for c in sorted(excluded))
        frame = self._query(
            f"select * exclude ({exclude}) from {self._relation_sql()} "
            f"where {market_sql} = ? and {date_sql} = ?",
            [*market_params, market, *date_params, snapshot_date],
        )
        frame = frame.rename(columns=self.mapping.renames)
        missing = [c for c in self.mapping.product_columns if c not in frame.columns]
        if missing:
            raise CarReadError(f"external CAR {self.mapping.path}: product columns {missing} not found")
        frame.insert(1, "snapshot_date", pd.Timestamp(snapshot_date))
        return frame

    def source_name(self, market: str, snapshot_date: dt.date) -> str:
        """How one (market, snapshot) of this source is named in messages and `_source_file`."""
        return f"{self.mapping.path}#market={market}&snapshot={snapshot_date}"
