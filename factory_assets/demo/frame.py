"""One snapshot of the demo CAR as a frame: contract columns first, then extras and dirt.

Strings are built from byte matrices and Arrow dictionaries, never by a per-row Python loop.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from factory_assets.demo.dynamics import Features, Moves
from factory_assets.demo.population import (
    ADDONS,
    CONTRACT_TYPES,
    GENDERS,
    INCOME_BANDS,
    PAYMENT_METHODS,
    TIERS,
    Population,
)
from factory_assets.demo.profile import MarketProfile, stable_hash

ID_DIGITS = 8


def _fixed_width_strings(prefix: str, digits: np.ndarray) -> pd.Series:
    """Strings `prefix + digits` from an (n, k) matrix of ASCII codes, without a per-row loop."""
    n, width = len(digits), len(prefix) + digits.shape[1]
    head = np.broadcast_to(np.frombuffer(prefix.encode("ascii"), dtype=np.uint8), (n, len(prefix)))
    data = np.ascontiguousarray(np.concatenate([head, digits.astype(np.uint8)], axis=1))
    offsets = np.arange(n + 1, dtype=np.int32) * width
    array = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes()))
    return pd.Series(pd.array(array, dtype="str"))


def customer_ids(market: str, numbers: np.ndarray) -> pd.Series:
    """`<MARKET><8 digits>`, e.g. `UK00001234`: stable for a customer across months."""
    if len(numbers) and numbers.max() >= 10**ID_DIGITS:
        raise ValueError(f"market '{market}' ran out of {ID_DIGITS}-digit customer numbers")
    powers = 10 ** np.arange(ID_DIGITS - 1, -1, -1, dtype=np.int64)
    return _fixed_width_strings(market.upper(), (numbers[:, None] // powers) % 10 + 48)


def account_refs(market: str, month_index: int, numbers: np.ndarray) -> pd.Series:
    """A unique reference per row: a bijective scramble of (month, customer) into 12 hex digits."""
    mask = (1 << 48) - 1
    x = (np.uint64(month_index) << np.uint64(36)) | numbers.astype(np.uint64)
    x = (x ^ np.uint64(stable_hash(market) & mask)) & np.uint64(mask)
    x = (x * np.uint64(0x9E3779B97F4B)) & np.uint64(mask)
    x ^= x >> np.uint64(21)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(44, -1, -4, dtype=np.uint64)
    return _fixed_width_strings("AR", hexdigits[((x[:, None] >> shifts) & np.uint64(15)).astype(np.intp)])


def _labels(names: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """Category names by code; a negative code is a missing value."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    labels = pa.DictionaryArray.from_arrays(indices, pa.array(names, type=pa.string())).cast(pa.string())
    return pd.Series(pd.array(labels, dtype="str"))


def _nullable_int(values: np.ndarray) -> pd.Series:
    return pd.Series(pd.array(np.floor(values), dtype="Float64").astype("Int64"))


def snapshot_frame(
    market: str, snapshot: dt.date, month_index: int, profile: MarketProfile,
    pop: Population, f: Features, moves: Moves,
) -> pd.DataFrame:  # fmt: skip
    """The CAR rows of one snapshot, contract columns first, then extras and dirt."""
    n = len(pop)
    columns = {
        "customer_id": customer_ids(market, pop.num),
        "snapshot_date": pd.Series(np.full(n, np.datetime64(snapshot, "us"))),
        "tenure_months": pop.tenure,
        "age": _nullable_int(pop.age),
        "region": _labels(profile.regions, pop.region),
        "base_tier": _labels(TIERS, pop.tier),
        **{f"addon_{name}": pop.addons[:, k].astype(np.int64) for k, name in enumerate(ADDONS)},
        "viewing_hours": f.viewing_hours,
        "sessions": f.sessions,
        "devices": f.devices,
        "arpu": f.arpu,
        "late_payments": f.late_payments,
        "support_calls": f.support_calls,
        "campaign_contacts": f.campaign_contacts,
        "gender": _labels(GENDERS, pop.gender),
        "household_size": pop.household.astype(np.int64),
        "income_band": _labels(INCOME_BANDS, pop.income),
        "payment_method": _labels(PAYMENT_METHODS, pop.payment),
        "contract_type": _labels(CONTRACT_TYPES, pop.contract),
        **{f"{name}_hours": f.genre[:, k] for k, name in enumerate(ADDONS)},
        "days_since_last_login": f.days_since_last_login,
        "complaints": f.complaints,
        "campaign_responses": f.campaign_responses,
        "discount_active": f.discount.astype(np.int64),
        "satisfaction_score": _nullable_int(f.satisfaction),
        "email_opt_in": pop.email_opt_in.astype(np.int64),
        "country_code": _labels((market.upper(),), np.zeros(n, dtype=np.int8)),
        "account_ref": account_refs(market, month_index, pop.num),
        "cancel_request_flag": moves.cancel_flag.astype(np.int64),
    }
    return pd.DataFrame(columns)
