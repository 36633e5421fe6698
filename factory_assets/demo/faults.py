"""Deliberately broken CAR files, one per kind of fault the factory must catch (for tests).

Each kind names what is broken and which guard should catch it: the contract (`validate_car`
raises `ContractError`), reading the file (it cannot be parsed), a Data Checker 1 check (the file
passes the contract but its content is wrong), or the landing sensor (a file still being copied).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from factory_assets.demo.car import DemoConfig, generate_market
from factory_assets.demo.io import (
    FileFormat,
    frame_to_table,
    snapshot_path,
    write_bytes_atomically,
    write_snapshot,
)
from factory_assets.demo.profile import market_rng

FaultKind = Literal[
    "missing_column",
    "renamed_column",
    "wrong_type",
    "duplicate_keys",
    "empty",
    "truncated_parquet",
    "bad_encoding_csv",
    "all_null_feature",
    "negative_counts",
    "future_date",
    "category_explosion",
    "volume_halved",
    "half_written",
]

FAULT_KINDS: dict[str, str] = {
    "missing_column": "contract: the required column 'arpu' is absent",
    "renamed_column": "contract: 'viewing_hours' is renamed 'viewing_hrs' (required column missing)",
    "wrong_type": "contract: 'sessions' holds text ('unknown', 'n/a') among its numbers",
    "duplicate_keys": "contract: 5% of the rows repeat (customer_id, snapshot_date)",
    "empty": "contract: every column present but no row",
    "truncated_parquet": "read: the Parquet file is cut off after 60% of its bytes",
    "bad_encoding_csv": "read: a UTF-8 CSV with latin-1 bytes ('m\\xfcnchen') that are invalid UTF-8",
    "all_null_feature": "null rate: 'viewing_hours' (nullable in the contract) is null in every row",
    "negative_counts": "contract: 'support_calls' is negative in 3% of the rows",
    "future_date": "contract: 'snapshot_date' is 13 months after today in every row",
    "category_explosion": "categories: 40% of rows get new 'region' values, up to 300 distinct ones",
    "volume_halved": "customer_overlap (volume sits at its threshold): half the rows are missing",
    "half_written": "sensor: 'car_<date>.parquet.part', the first half of a file still being copied",
}
"""Every fault kind and what is broken, prefixed by the guard that must catch it."""

assert set(FAULT_KINDS) == set(get_args(FaultKind)), "FAULT_KINDS must document every FaultKind"

_BAD_BYTES_TOKEN = "__LATIN1__"
_NEW_REGIONS = 300
_BASE_CUSTOMERS = 1000


def _small_base(market: str, snapshot: dt.date, seed: int) -> pd.DataFrame:
    config = DemoConfig({market: _BASE_CUSTOMERS}, months=1, start=snapshot.replace(day=1), seed=seed)
    _, frame = next(generate_market(config, market))
    frame["snapshot_date"] = pd.Timestamp(snapshot).as_unit("us")
    return frame


def _rows(rng: np.random.Generator, frame: pd.DataFrame, share: float) -> np.ndarray:
    count = max(1, round(share * len(frame)))
    return np.sort(rng.choice(len(frame), size=min(count, len(frame)), replace=False))


def _future(today: dt.date) -> pd.Timestamp:
    month = today.year * 12 + today.month - 1 + 13
    return pd.Timestamp(dt.date(month // 12, month % 12 + 1, 1)).as_unit("us")


def _corrupt_frame(kind: str, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The frame with a content fault applied (kinds that break the file itself are elsewhere)."""
    out = frame.copy()
    if kind == "missing_column":
        return out.drop(columns=["arpu"])
    if kind == "renamed_column":
        return out.rename(columns={"viewing_hours": "viewing_hrs"})
    if kind == "wrong_type":
        text = out["sessions"].astype(str).to_numpy(dtype=object)
        rows = _rows(rng, out, 0.05)
        text[rows] = rng.choice(["unknown", "n/a"], size=len(rows))
        out["sessions"] = pd.Series(text, dtype="str")
        return out
    if kind == "duplicate_keys":
        return pd.concat([out, out.iloc[_rows(rng, out, 0.05)]], ignore_index=True)
    if kind == "empty":
        return out.iloc[:0]
    if kind == "all_null_feature":
        out["viewing_hours"] = np.nan
        return out
    if kind == "negative_counts":
        rows = _rows(rng, out, 0.03)
        out.loc[rows, "support_calls"] = -rng.integers(1, 6, size=len(rows))
        return out
    if kind == "future_date":
        out["snapshot_date"] = _future(dt.date.today())
        return out
    if kind == "category_explosion":
        rows = rng.permutation(_rows(rng, out, 0.4))
        out.loc[rows, "region"] = [f"region_{k % _NEW_REGIONS:03d}" for k in range(len(rows))]
        return out
    if kind == "volume_halved":
        return out.iloc[_rows(rng, out, 0.5)].reset_index(drop=True)
    raise ValueError(f"unknown fault kind '{kind}'; expected one of {sorted(FAULT_KINDS)}")


def _write_cut_parquet(frame: pd.DataFrame, path: Path, keep: float) -> Path:
    buffer = io.BytesIO()
    pq.write_table(frame_to_table(frame), buffer)
    data = buffer.getvalue()
    return write_bytes_atomically(path, lambda temp: temp.write_bytes(data[: int(len(data) * keep)]))


def _write_bad_encoding(frame: pd.DataFrame, path: Path, rng: np.random.Generator) -> Path:
    out = frame.copy()
    out.loc[_rows(rng, out, 0.05), "region"] = _BAD_BYTES_TOKEN
    text = out.to_csv(index=False, date_format="%Y-%m-%d")
    data = text.encode("utf-8").replace(_BAD_BYTES_TOKEN.encode("ascii"), "münchen".encode("latin-1"))
    return write_bytes_atomically(path, lambda temp: temp.write_bytes(data))


def write_faulty_file(
    kind: FaultKind,
    landing_dir: Path,
    market: str,
    snapshot: dt.date,
    base: pd.DataFrame | None = None,
    seed: int = 0,
    file_format: FileFormat = "parquet",
) -> Path:
    """Write one deliberately broken CAR file for tests; see `FAULT_KINDS` for what each breaks.

    `base` is a good snapshot to corrupt (else a small one of 1,000 customers is generated for
    `market` and `snapshot`). The file goes where a good one would (`snapshot_path`), except
    `truncated_parquet` (always .parquet), `bad_encoding_csv` (always .csv) and `half_written`
    (`.parquet.part`). Seeded: the same arguments write the same bytes.
    """
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind '{kind}'; expected one of {sorted(FAULT_KINDS)}")
    frame = _small_base(market, snapshot, seed) if base is None else base.reset_index(drop=True)
    rng = market_rng(seed, market, 2)
    if kind == "truncated_parquet":
        return _write_cut_parquet(frame, snapshot_path(landing_dir, market, snapshot, "parquet"), 0.6)
    if kind == "half_written":
        path = snapshot_path(landing_dir, market, snapshot, "parquet")
        return _write_cut_parquet(frame, path.with_name(path.name + ".part"), 0.5)
    if kind == "bad_encoding_csv":
        return _write_bad_encoding(frame, snapshot_path(landing_dir, market, snapshot, "csv"), rng)
    broken = _corrupt_frame(kind, frame, rng)
    return write_snapshot(broken, snapshot_path(landing_dir, market, snapshot, file_format))
