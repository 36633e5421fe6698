"""Model artefacts by content hash, drift references and score references.

A CatBoost model is stored as `<root>/<sha256>.cbm`, a scikit-learn model (the logistic family) as
`<root>/<sha256>.pkl` (a pickle: loaded only after its bytes hash to the version the registry holds,
and only from the factory's own model directory). The suffix says how to load it.

Next to each artefact: its drift reference sample (`<sha256>.reference.parquet`) and, for a model
made champion, the scores it gave when it was made live (`<sha256>.scores-<yyyymmdd>.parquet`).

The version of a model is the SHA-256 of its saved bytes, so the same data and seed give the same
version. CatBoost stamps every saved model with its finish time and a random GUID; both are removed
before saving so the hash depends on the model alone. Writes go to a temporary file in the same
directory and are moved into place atomically; loading re-hashes the file and fails clearly when it
is missing or does not match its name.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from catboost import CatBoostClassifier

from factory_assets.core.files import file_sha256

VOLATILE_METADATA = ("train_finish_time", "model_guid")
"""CatBoost metadata that differs between identical fits; removed before hashing."""
SUFFIXES = (".cbm", ".pkl")
"""Artefact suffixes: CatBoost's own format, a pickled scikit-learn estimator."""


class ModelStoreError(RuntimeError):
    """A model artefact or reference sample is missing, corrupt or unreadable."""


class ModelStore:
    """A directory of model artefacts named by the hash of their content."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def artefact_path(self, version: str) -> Path:
        """Where the artefact of `version` lives (the `.cbm` path when none is stored yet)."""
        for suffix in SUFFIXES:
            path = self.root / f"{version}{suffix}"
            if path.is_file():
                return path
        return self.root / f"{version}{SUFFIXES[0]}"

    def reference_path(self, version: str) -> Path:
        """Where the drift reference sample of `version` lives."""
        return self.root / f"{version}.reference.parquet"

    def score_reference_path(self, version: str, snapshot: dt.date) -> Path:
        """Where the scores of `version` on `snapshot`, recorded at its decision, live."""
        return self.root / f"{version}.scores-{snapshot:%Y%m%d}.parquet"

    def _temp_path(self, suffix: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.root, suffix=suffix, prefix=".incoming-")
        os.close(handle)
        return Path(name)

    def save(self, model: Any) -> str:
        """Save `model` under its content hash (atomically) and return the hash: its version."""
        if isinstance(model, CatBoostClassifier):
            return self._save_catboost(model)
        return self._save_bytes(pickle.dumps(model, protocol=5), ".pkl")

    def _save_catboost(self, model: CatBoostClassifier) -> str:
        metadata = model.get_metadata()
        for key in VOLATILE_METADATA:
            if key in metadata:
                del metadata[key]
        temp = self._temp_path(".cbm")
        try:
            model.save_model(str(temp), format="cbm")
            version = file_sha256(temp)
            os.replace(temp, self.root / f"{version}.cbm")
        finally:
            temp.unlink(missing_ok=True)
        return version

    def _save_bytes(self, payload: bytes, suffix: str) -> str:
        temp = self._temp_path(suffix)
        try:
            temp.write_bytes(payload)
            version = file_sha256(temp)
            os.replace(temp, self.root / f"{version}{suffix}")
        finally:
            temp.unlink(missing_ok=True)
        return version

    def verify(self, version: str) -> Path:
        """The artefact path of `version`, after checking it exists and hashes to its name."""
        return _verified(self.artefact_path(version), version, "model artefact", f"version {version}")

    def load(self, version: str) -> Any:
        """The model of `version`; fails with `ModelStoreError` on a missing or corrupt file."""
        path = self.verify(version)
        try:
            if path.suffix == ".pkl":
                with path.open("rb") as handle:
                    return pickle.load(handle)  # safe: the bytes hash to the registered version
            model = CatBoostClassifier()
            model.load_model(str(path), format="cbm")
        except Exception as exc:  # CatBoostError, UnpicklingError: re-raised naming the file
            raise ModelStoreError(f"model artefact {path} cannot be loaded: {exc}") from exc
        return model

    def save_reference(self, version: str, frame: pd.DataFrame) -> tuple[Path, str]:
        """Store the drift reference sample of `version`; returns (path, sha256 of the file)."""
        temp = self._temp_path(".parquet")
        try:
            frame.to_parquet(temp, index=False)
            digest = file_sha256(temp)
            path = self.reference_path(version)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return path, digest

    def save_score_reference(self, version: str, snapshot: dt.date, frame: pd.DataFrame) -> tuple[Path, str]:
        """Store the scores of `version` on `snapshot` (customer_id, probability); returns (path, sha256)."""
        temp = self._temp_path(".parquet")
        try:
            frame.to_parquet(temp, index=False)
            digest = file_sha256(temp)
            path = self.score_reference_path(version, snapshot)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return path, digest

    def load_score_reference(self, version: str, snapshot: dt.date, expected_sha256: str) -> pd.DataFrame:
        """The scores `version` gave on `snapshot`, verified against the hash the registry holds."""
        path = self.score_reference_path(version, snapshot)
        _verified(path, expected_sha256, "score reference", f"model {version}")
        return pd.read_parquet(path)

    def load_reference(self, version: str, expected_sha256: str) -> pd.DataFrame:
        """The drift reference sample of `version`, verified against the hash the registry holds."""
        path = self.reference_path(version)
        _verified(path, expected_sha256, "reference sample", f"model {version}")
        return pd.read_parquet(path)


def _verified(path: Path, expected_sha256: str, kind: str, owner: str) -> Path:
    """`path` after checking that it exists and hashes to `expected_sha256`."""
    if not path.is_file():
        raise ModelStoreError(f"{kind} {path} for {owner} is missing")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ModelStoreError(
            f"{kind} {path} is corrupt: its content hashes to {actual}, not {expected_sha256}"
        )
    return path
