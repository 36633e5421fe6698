"""`factory init DIR --car FILE`: a commented starting deployment folder from a CAR export it inspects.

It reads the export (Parquet or CSV; the CSV delimiter is sniffed), proposes a type per column, the
customer key and the snapshot date (candidate keys: a (customer, date) pair that is unique), the
market column, and label columns (0/1 values, unknown for the latest dates), then writes:

- `config/car_contract.yaml`: every column with its type, role and rules, to review;
- `config/<stem>_mapping.yaml`: the export mapped onto the contract (renames, date format, market);
- `config/factory.yaml`: the deployment's settings, every field commented;
- `model_specs/<label>.yaml` for each label column found (a label target), else
  `model_specs/movement.yaml.template`, a movement target to fill in and rename to `.yaml`.

Nothing is overwritten: an existing file is kept and reported. No Dagster import.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

DATE_NAMES = re.compile(r"(snapshot|date|month|period|as_of|asof|yyyymm)", re.IGNORECASE)
KEY_NAMES = re.compile(r"(customer|cust|client|account|policy|member|subscriber|contract)", re.IGNORECASE)
LABEL_NAMES = re.compile(
    r"(label|target|churn|lapse|lapsed|flag_y|outcome|responded|converted)", re.IGNORECASE
)
MARKET_NAMES = re.compile(r"^(market|country|region_code|country_code|cc)$", re.IGNORECASE)
MAX_CATEGORY_LEVELS = 50


class InitError(ValueError):
    """The export cannot be read or has no usable key columns; the message says why."""


@dataclass
class CarProfile:
    """What `inspect_car` found in an export."""

    path: Path
    delimiter: str | None
    types: dict[str, str]
    nullable: set[str]
    customer: str
    date: str
    date_format: str | None
    market: str | None
    labels: list[str] = field(default_factory=list)


def read_export(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The export as text-safe columns and its CSV delimiter (None for Parquet)."""
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path), None
    try:
        head = path.read_text(encoding="utf-8-sig")[:20_000]
    except (OSError, UnicodeDecodeError) as exc:
        raise InitError(f"{path}: cannot read it as UTF-8 text: {exc}") from exc
    try:
        delimiter = csv.Sniffer().sniff(head.splitlines()[0], delimiters=",;|\t").delimiter
    except (csv.Error, IndexError) as exc:
        raise InitError(f"{path}: cannot tell its delimiter (tried , ; | tab) from the first line") from exc
    return pd.read_csv(path, sep=delimiter, encoding="utf-8-sig"), delimiter


def _date_format(series: pd.Series) -> str | bool | None:
    """The strftime format of a date column, None for ISO dates, False when it is not a date."""
    values = series.dropna().astype(str).head(200)
    if values.empty:
        return False
    if values.str.fullmatch(r"\d{6}").all():
        return "%Y%m"
    if values.str.fullmatch(r"\d{8}").all():
        return "%Y%m%d"
    if values.str.fullmatch(r"\d{4}-\d{2}-\d{2}([ T].*)?").all():
        return None
    return False


def _column_type(series: pd.Series) -> str:
    known = series.dropna()
    if pd.api.types.is_bool_dtype(series) or (
        pd.api.types.is_numeric_dtype(series) and len(known) and set(known.unique()) <= {0, 1}
    ):
        return "flag"
    if pd.api.types.is_integer_dtype(known) or (
        pd.api.types.is_numeric_dtype(series) and len(known) and (known % 1 == 0).all()
    ):
        return "int"
    if pd.api.types.is_numeric_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    return "category" if known.nunique() <= MAX_CATEGORY_LEVELS else "string"


def _pick(candidates: list[str], pattern: re.Pattern[str]) -> str | None:
    named = [c for c in candidates if pattern.search(c)]
    return (named or candidates or [None])[0]


def _keys(frame: pd.DataFrame) -> tuple[str, str, str | None]:
    dates = [c for c in frame.columns if _date_format(frame[c]) is not False and DATE_NAMES.search(c)]
    dates = dates or [c for c in frame.columns if _date_format(frame[c]) is not False]
    date = _pick(dates, DATE_NAMES)
    if date is None:
        raise InitError("no column looks like a snapshot date (YYYY-MM-DD, YYYYMM or YYYYMMDD values)")
    market = next((c for c in frame.columns if MARKET_NAMES.match(c)), None)
    scope = [date, *([market] if market else [])]
    unique = [
        c
        for c in frame.columns
        if c not in scope and frame[c].notna().all() and not frame.duplicated([*scope, c]).any()
    ]
    customer = _pick(unique, KEY_NAMES)
    if customer is None:
        raise InitError(f"no column identifies a customer within a {date}: every candidate repeats")
    return customer, date, market


def _labels(frame: pd.DataFrame, types: dict[str, str], date: str) -> list[str]:
    """0/1 columns that are unknown (all NULL) for the latest date but known before it."""
    latest = frame[date] == frame[date].max()
    return [
        c
        for c, kind in types.items()
        if kind == "flag" and frame.loc[latest, c].isna().all() and frame.loc[~latest, c].notna().any()
    ] or [c for c, kind in types.items() if kind == "flag" and LABEL_NAMES.search(c)]


def inspect_car(path: Path) -> CarProfile:
    """Types, keys, market and label columns of an export."""
    frame, delimiter = read_export(path)
    if frame.empty:
        raise InitError(f"{path}: the export has no rows")
    customer, date, market = _keys(frame)
    types = {c: _column_type(frame[c]) for c in frame.columns if c not in (date, market)}
    types[customer] = "string"
    date_format = _date_format(frame[date])
    return CarProfile(
        path=path,
        delimiter=delimiter,
        types=types,
        nullable={c for c in types if frame[c].isna().any()},
        customer=customer,
        date=date,
        date_format=date_format if isinstance(date_format, str) else None,
        market=market,
        labels=_labels(frame, types, date),
    )


def _contract(profile: CarProfile) -> str:
    lines = [
        f"# The CAR contract, proposed by `factory init` from {profile.path.name}: review every line.",
        "# type: string | date | int | float | category | flag (0/1)",
        "# role: key | product (holdings: movement targets) | feature | label (known only up to a date)",
        "keys: [customer_id, snapshot_date]",
        "columns:",
        '  customer_id: {type: string, role: key, pattern: "^[A-Za-z0-9_-]{1,64}$"}'
        f"   # from '{profile.customer}'",
        "  snapshot_date: {type: date, role: key}" + f"   # from '{profile.date}'",
    ]
    for column, kind in profile.types.items():
        if column == profile.customer:
            continue
        role = ", role: label" if column in profile.labels else ""
        nullable = ", nullable: true" if column in profile.nullable else ""
        lines.append(f"  {column}: {{type: {kind}{role}{nullable}}}")
    return "\n".join(lines) + "\n"


def _mapping(profile: CarProfile, folder: Path) -> dict[str, object]:
    mapping: dict[str, object] = {
        "path": os.path.relpath(profile.path.resolve(), (folder / "config").resolve()),
        "format": "parquet" if profile.delimiter is None else "csv",
        "date_column": profile.date,
        "date_format": profile.date_format,
        "renames": {profile.customer: "customer_id"},
    }
    if profile.delimiter is not None:
        mapping["csv_delimiter"] = profile.delimiter
    if profile.market:
        mapping["market_column"] = profile.market
    else:
        mapping["market"] = "main"
    return mapping


SETTINGS_TEMPLATE = """\
# The deployment's settings (factory_assets/deployment.py): every field is optional.
name: {name}
data_dir: data                        # where this deployment keeps its data, relative to this folder
sources:
  external: [config/{mapping}]  # exports mapped onto the contract; landed files: data/landing
data_checker_1:
  thresholds: {{}}                      # e.g. {{min_volume_ratio: 0.5, max_psi: 0.25}}
  severities: {{}}                      # e.g. {{customer_overlap: "off"}} when each month holds new customers
  markets: {{}}                         # per market: {{thresholds: {{}}, severities: {{}}}}
data_checker_2:
  markets: {{}}                         # per market: score_checks fields, e.g. {{max_psi: 0.4}}
schedules:
  daily_scoring: "0 6 * * *"
  weekly_retrain: "0 3 * * 1"
"""

MOVEMENT_TEMPLATE = """\
# A movement target: a holdings column (role: product in the contract) between a snapshot and the one
# `horizon` months later. Mark the product column in config/car_contract.yaml, then fill this in.
description: Upgrade within one month (template: edit product, from and to).
target: {kind: movement, product: CHANGE_ME, from: [CHANGE_ME], to: [CHANGE_ME], horizon: 1}
output: {format: both}
"""


def _label_spec(label: str) -> str:
    return (
        f"# Predict '{label}' (a 0/1 label known only up to a date): trained on the snapshots where it is\n"
        "# known, scored on the latest snapshot's eligible customers.\n"
        f"description: Propensity of {label}.\n"
        f"target: {{kind: label, column: {label}, horizon: 0}}\n"
        "output: {format: both, csv: true}\n"
    )


def init_deployment(folder: Path, car: Path) -> list[str]:
    """Write the starting deployment for `car` into `folder`; returns one line per file (written or kept)."""
    profile = inspect_car(car)
    stem = re.sub(r"[^a-z0-9_]", "_", car.stem.lower())
    files: dict[Path, str] = {
        folder / "config" / "car_contract.yaml": _contract(profile),
        folder / "config" / f"{stem}_mapping.yaml": "# The export mapped onto the contract "
        "(fields: factory_assets/core/car/external.py).\n"
        + yaml.safe_dump(_mapping(profile, folder), sort_keys=False),
        folder / "config" / "factory.yaml": SETTINGS_TEMPLATE.format(
            name=folder.name, mapping=f"{stem}_mapping.yaml"
        ),
    }
    for label in profile.labels:
        files[folder / "model_specs" / f"{re.sub(r'[^a-z0-9_]', '_', label.lower())}.yaml"] = _label_spec(
            label
        )
    if not profile.labels:
        files[folder / "model_specs" / "movement.yaml.template"] = MOVEMENT_TEMPLATE
    report = []
    for path, text in files.items():
        if path.exists():
            report.append(f"kept     {path} (exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        report.append(f"wrote    {path}")
    report.append(
        f"found: customer key '{profile.customer}', snapshot date '{profile.date}' "
        f"({profile.date_format or 'ISO'}), market column '{profile.market or '(none: one market, main)'}', "
        f"labels {profile.labels or '(none)'}"
    )
    return report
