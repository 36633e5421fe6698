"""The datasets of `bench_quality.py`: CAR snapshots, a label column and the spec that models them.

Every dataset becomes monthly CAR snapshots that the factory's own preparation reads, so the
factory runs on it exactly as on a delivered CAR; its test is the latest labelled snapshot:
- `demo_<model>`: the seeded demo generator (`factory_assets.demo`), one market of the size of
  `make run`'s uk market; the model's spec from `model_specs/` as shipped. Out of time.
- `insurer_nl`: the insurer example's seeded export (`factory_assets.demo.insurer`), its
  contract and its `lapse` spec as shipped. Out of time (the latest labelled renewal cohort).
  `insurer_nl_x10`: the same generator at ten times the policies: the shipped example's test (2,500
  policies at a 30 % lapse rate) is too small to tell an ECE of 0.02 from chance.
- `cdnow`: the CDNOW customer transactions (23,570 customers who first bought in Q1 1997, every
  purchase to June 1998), file `lifetimes/datasets/CDNOW_master.txt` of the PyPI package
  `lifetimes` 0.11.3. One snapshot per month from April 1997: recency, frequency and value features
  from the purchases before the month; the label is a purchase in that month. Out of time: the
  test is June 1998, the training window the twelve months before it.
- `coil2000`: the CoIL 2000 challenge's insurance customers (will the customer buy a caravan
  policy), `ticdata` in `kernlab/data/ticdata.rda` of the Debian package `r-cran-kernlab`. The
  official split: rows 1-5,822 (TICDATA2000, 348 buyers) train, rows 5,823-9,822 (TICEVAL2000, 238
  buyers) test.
- `mlc_churn`: the MLC++ telecom churn data, `mlc_churn` in `modeldata/data/Rdata.rdb` of the Debian
  package `r-cran-modeldata`. The official split of MLC++ (`churn.data` / `churn.test`, C50's
  `churnTrain` / `churnTest`): rows 1-3,333 (483 churners) train, rows 3,334-5,000 (224) test.

A dataset with an official split is two snapshots a month apart: the train rows in the first, the
test rows in the second, so the factory's out-of-time split reproduces the official one. Nothing is
downloaded here: the PyPI package is installed by the `bench` extra, the Debian packages are
unpacked by `bench/get_datasets.sh` into `bench/.datasets/` (not in git).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import lzma
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadr

from factory_assets.core.car.ingest import SnapshotInput, prepare_snapshot
from factory_assets.core.contract import CarContract, load_contract
from factory_assets.core.paths import REPO_ROOT
from factory_assets.core.specs import ModelSpec, load_spec
from factory_assets.demo.car import DemoConfig, generate_market
from factory_assets.demo.insurer import InsurerConfig, insurer_export

DATASETS_DIR = REPO_ROOT / "bench" / ".datasets"
R_LIBRARY = DATASETS_DIR / "usr" / "lib" / "R" / "site-library"
INSURER = REPO_ROOT / "examples" / "insurer"
LABEL = "label"
TRAIN_DAY, TEST_DAY = dt.date(2000, 1, 1), dt.date(2000, 2, 1)


@dataclass(frozen=True)
class Dataset:
    """A dataset as the factory sees it: CAR snapshots, the label columns and the spec."""

    name: str
    source: str
    split: str
    snapshots: list[tuple[dt.date, pd.DataFrame]]
    spec: ModelSpec
    label_columns: frozenset[str] = field(default_factory=lambda: frozenset({LABEL}))
    note: str = ""


def label_spec(name: str) -> ModelSpec:
    """A spec with the defaults: the target is the CAR's `label` column, every other column a feature."""
    return ModelSpec.model_validate(
        {
            "name": name,
            "target": {"kind": "label", "column": LABEL, "horizon": 0},
            "features": {"exclude": [LABEL]},
        }
    )


def _validated(frames: Iterator[tuple[dt.date, pd.DataFrame]], contract: CarContract, market: str):
    for day, frame in frames:
        item = SnapshotInput(market, day, f"{market}/{day}", lambda: "", lambda f=frame: f)
        yield day, prepare_snapshot(frame, contract, item)


def demo(model: str, customers: int = 12_000, months: int = 18, seed: int = 7) -> Dataset:
    """One demo market (the size of `make run`'s uk) and the model's shipped spec."""
    config = DemoConfig(markets={"uk": customers}, months=months, seed=seed)
    contract = load_contract()
    snapshots = list(_validated(generate_market(config, "uk"), contract, "uk"))
    return Dataset(
        f"demo_{model}",
        f"factory_assets.demo, seed {seed}, {customers:,} customers x {months} months",
        "out of time: the latest labelled snapshot",
        snapshots,
        load_spec(REPO_ROOT / "model_specs" / f"{model}.yaml"),
        frozenset(contract.label_columns),
    )


def insurer(country: str, scale: int = 1) -> Dataset:
    """One country of the insurer example's export (`scale` times its policies), mapped as it maps it."""
    shipped = InsurerConfig()
    export = insurer_export(InsurerConfig(markets={k: v * scale for k, v in shipped.markets.items()}))
    rows = export[export["country"] == country].drop(columns="country")
    # the contract's minimum; the generator's normal draws go below it about once in 20,000 policies
    rows["telematics_score"] = rows["telematics_score"].clip(lower=0)
    rows = rows.rename(columns={"policy_no": "customer_id"})
    rows["snapshot_date"] = pd.to_datetime(rows.pop("month").astype(str), format="%Y%m")
    contract = load_contract(INSURER / "config" / "car_contract.yaml")
    frames = ((d.date(), part) for d, part in rows.groupby("snapshot_date", sort=True))
    size = f"{shipped.markets[country] * scale:,} policies a month"
    return Dataset(
        f"insurer_{country.lower()}{f'_x{scale}' if scale > 1 else ''}",
        f"factory_assets.demo.insurer, seed 11, {size} ({'as shipped' if scale == 1 else f'{scale}x'})",
        "out of time: the latest labelled renewal cohort",
        list(_validated(frames, contract, country.lower())),
        load_spec(INSURER / "model_specs" / "lapse.yaml"),
        frozenset(contract.label_columns),
    )


def _cdnow_months() -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Customers and per-month purchases, spend, CDs and first-purchase spend (customers x months)."""
    path = Path(
        str(importlib.metadata.distribution("lifetimes").locate_file("lifetimes/datasets/CDNOW_master.txt"))
    )
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str}, encoding="utf-8")
    day = pd.to_datetime(raw["date"], format="%Y%m%d")
    month = (day.dt.year - 1997) * 12 + day.dt.month - 1
    customers = pd.Index(sorted(raw["customer_id"].unique()))
    row = customers.get_indexer(raw["customer_id"])
    shape = (len(customers), int(month.max()) + 1)
    purchases, spend, cds = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    np.add.at(purchases, (row, month), 1.0)
    np.add.at(spend, (row, month), raw["dollar_value"].to_numpy(float))
    np.add.at(cds, (row, month), raw["number_of_cds"].to_numpy(float))
    first = (
        raw.assign(day=day).sort_values(["customer_id", "day"]).groupby("customer_id")["dollar_value"].first()
    )
    return customers, purchases, spend, cds, first.reindex(customers).to_numpy(float)


def _cdnow_snapshot(month: int, customers: pd.Index, purchases, spend, cds, first_spend) -> pd.DataFrame:
    """Features from the purchases before `month` (0 = January 1997); the label is a purchase in it."""
    before = purchases[:, :month]
    months_with = np.nonzero(before > 0)
    last = np.full(len(customers), -1)
    np.maximum.at(last, months_with[0], months_with[1])
    first = np.argmax(before > 0, axis=1)
    frequency = before.sum(axis=1)
    return pd.DataFrame(
        {
            "customer_id": customers,
            "snapshot_date": pd.Timestamp(1997 + month // 12, month % 12 + 1, 1),
            "recency_months": (month - last).astype(float),
            "tenure_months": (month - first).astype(float),
            "frequency": frequency,
            "spend_total": spend[:, :month].sum(axis=1),
            "spend_mean": spend[:, :month].sum(axis=1) / frequency,
            "cds_total": cds[:, :month].sum(axis=1),
            "first_spend": first_spend,
            "purchases_1m": before[:, -1:].sum(axis=1),
            "purchases_3m": before[:, -3:].sum(axis=1),
            "spend_3m": spend[:, max(month - 3, 0) : month].sum(axis=1),
            LABEL: (purchases[:, month] > 0).astype(np.int64),
        }
    )


def cdnow() -> Dataset:
    """CDNOW: monthly snapshots April 1997 - June 1998 of every customer, purchase in the month."""
    customers, purchases, spend, cds, first_spend = _cdnow_months()
    snapshots = []
    for month in range(3, purchases.shape[1]):
        frame = _cdnow_snapshot(month, customers, purchases, spend, cds, first_spend)
        snapshots.append((frame["snapshot_date"].iloc[0].date(), frame))
    return Dataset(
        "cdnow",
        "PyPI lifetimes 0.11.3: lifetimes/datasets/CDNOW_master.txt",
        "out of time: test June 1998, trained on the 12 months before",
        snapshots,
        label_spec("cdnow"),
    )


def _official_split(name: str, frame: pd.DataFrame, train_rows: int) -> list[tuple[dt.date, pd.DataFrame]]:
    """Train rows as one snapshot, test rows as the next month's: the factory's test is the official one."""
    frame = frame.assign(customer_id=[f"{name}{i:05d}" for i in range(len(frame))])
    frame = frame.assign(snapshot_date=pd.Timestamp(TRAIN_DAY))
    frame.loc[frame.index[train_rows:], "snapshot_date"] = pd.Timestamp(TEST_DAY)
    return [(TRAIN_DAY, frame.iloc[:train_rows]), (TEST_DAY, frame.iloc[train_rows:])]


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """R factors as plain strings (DuckDB would store a pandas categorical as an ENUM)."""
    return frame.assign(
        **{c: frame[c].astype(str) for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


def _require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bash bench/get_datasets.sh` first")
    return path


def coil2000() -> Dataset:
    """CoIL 2000 (kernlab's `ticdata`): 5,822 training and 4,000 evaluation customers."""
    path = _require(R_LIBRARY / "kernlab" / "data" / "ticdata.rda")
    raw = pyreadr.read_r(path)["ticdata"].reset_index(drop=True)
    label = (raw.pop("CARAVAN").astype(str) == "insurance").astype(np.int64)
    frame = _as_strings(raw).assign(**{LABEL: label})
    return Dataset(
        "coil2000",
        "Debian r-cran-kernlab 0.9-32: kernlab/data/ticdata.rda",
        "official: TICDATA2000 (5,822) / TICEVAL2000 (4,000)",
        _official_split("coil", frame, 5822),
        label_spec("coil2000"),
    )


def lazy_load_objects(rdb: Path) -> Iterator[pd.DataFrame]:
    """Every data frame of an R lazy-load database (`Rdata.rdb`, xz-compressed entries), in file order.

    An entry is a 4-byte big-endian length, a compression type ('Z' = raw LZMA2, as R writes it) and
    an R serialisation, which pyreadr reads as an uncompressed .rds file.
    """
    data, position = rdb.read_bytes(), 0
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / "entry.rds"
        while position < len(data):
            (length,), kind = (
                struct.unpack(">I", data[position : position + 4]),
                data[position + 4 : position + 5],
            )
            if kind != b"Z":
                raise ValueError(f"{rdb}: entry at {position} has compression {kind!r}, expected xz ('Z')")
            filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
            decoder = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
            scratch.write_bytes(decoder.decompress(data[position + 5 :], max_length=length))
            position = len(data) - len(decoder.unused_data)
            yield from pyreadr.read_r(scratch).values()


def mlc_churn() -> Dataset:
    """MLC++ churn (modeldata's `mlc_churn`, 5,000 rows): the first 3,333 train, the other 1,667 test."""
    rdb = _require(R_LIBRARY / "modeldata" / "data" / "Rdata.rdb")
    wanted = {"account_length", "number_customer_service_calls", "churn"}
    (raw,) = [f for f in lazy_load_objects(rdb) if wanted <= set(f.columns) and len(f) == 5000]
    raw = raw.reset_index(drop=True)
    label = (raw.pop("churn").astype(str) == "yes").astype(np.int64)
    frame = _as_strings(raw).assign(**{LABEL: label})
    return Dataset(
        "mlc_churn",
        "Debian r-cran-modeldata 1.1.0: modeldata/data/Rdata.rdb (mlc_churn)",
        "official: MLC++ churn.data (3,333) / churn.test (1,667)",
        _official_split("mlc", frame, 3333),
        label_spec("mlc_churn"),
    )


LOADERS = {
    "demo_churn": lambda: demo("churn"),
    "demo_addon_sports": lambda: demo("addon_sports"),
    "insurer_nl": lambda: insurer("NL"),
    "insurer_nl_x10": lambda: insurer("NL", scale=10),
    "cdnow": cdnow,
    "coil2000": coil2000,
    "mlc_churn": mlc_churn,
}
"""Every dataset by name, loaded on demand."""
