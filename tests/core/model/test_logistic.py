"""The logistic family's columns: categoricals coded then one-hot encoded, as on the strings themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from factory_assets.core.model.logistic import category_steps
from factory_assets.core.model.reasons import _one_hot_widths
from factory_assets.core.specs import LogisticParams

PARAMS = LogisticParams()


def levels(seed: int, n: int, shares: dict[str, float]) -> np.ndarray:
    names, p = list(shares), np.array(list(shares.values()))
    return np.random.default_rng(seed).choice(names, size=n, p=p / p.sum()).astype(object)


@pytest.mark.parametrize(
    "shares",
    [
        {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.095, "rare1": 0.004, "rare2": 0.001},  # two rare levels
        {"north": 0.5, "south": 0.3, "__missing__": 0.2},  # none rare: an unseen level is all zeros
    ],
)
def test_the_coded_block_gives_the_columns_of_a_one_hot_encoder_on_the_strings(shares) -> None:
    # given training levels, and scoring rows with a rare level, a frequent one and one never seen
    train = pd.DataFrame({"tier": levels(0, 5000, shares), "region": levels(1, 5000, shares)})
    score = pd.DataFrame(
        {
            "tier": np.array([*shares, "unseen"], dtype=object),
            "region": np.array(["unseen", *shares], dtype=object),
        }
    )
    reference = OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=PARAMS.min_category_share, sparse_output=False
    ).fit(train)

    # when the factory's block is fitted on the same rows
    block = category_steps(PARAMS).fit(train)

    # then both give the same columns, in the same order, for seen, rare and unseen levels alike
    np.testing.assert_array_equal(block.transform(train), reference.transform(train))
    np.testing.assert_array_equal(block.transform(score), reference.transform(score))
    assert _one_hot_widths(block) == _one_hot_widths(reference)
