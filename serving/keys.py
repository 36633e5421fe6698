"""API keys of the scoring service: created once, shown once, stored only as salted hashes.

The keys file (`config/api_keys.yaml` in the deployment folder, `api.keys_file` in
`config/factory.yaml` moves it) lists one entry per key: its id, a name, an optional market scope,
a random salt and `sha256(salt || secret)`. A key reads `mf_<id>_<secret>`: the id finds the entry
without trying every hash, the 256-bit random secret is what proves it. A fast salted hash is enough
for a random secret of that length (no one can guess it), and it keeps a request's check in
microseconds; slow password hashes (pbkdf2, scrypt) protect low-entropy human passwords, which an
API key is not (docs/decisions.md).

`KeyFile` re-reads the file when it changes (stat signature), so a key created while the service
runs works at once, and a revoked one stops working.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from factory_assets.core.release.store import write_atomic
from factory_assets.core.specs import KEY_PATTERN

KEY_PREFIX = "mf"
KEY_FORMAT = re.compile(r"^mf_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
FILE_HEADER = (
    "# API keys of the scoring service, as salted sha256 hashes: the keys themselves are never stored.\n"
    "# Create one with: python -m factory_assets.cli api-key create --name <who> [--market <m> ...]\n"
    "# Remove an entry to revoke its key. markets: empty = every market.\n"
)


class KeyFileError(ValueError):
    """A keys file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class ApiKey:
    """One stored key: never the key itself, only its salted hash and what it may read."""

    key_id: str
    name: str
    salt: str
    sha256: str
    markets: tuple[str, ...] = ()
    created_at: str = ""

    def allows(self, market: str) -> bool:
        """True if this key may read `market` (an empty scope allows every market)."""
        return not self.markets or market in self.markets

    @property
    def scope(self) -> str:
        """The markets in words, for error messages."""
        return ", ".join(self.markets) if self.markets else "every market"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def new_key(name: str, markets: list[str], now: dt.datetime) -> tuple[str, ApiKey]:
    """A new random key and its stored entry; the key is returned once and never kept."""
    bad = [m for m in markets if not KEY_PATTERN.match(m)]
    if bad:
        raise KeyFileError(f"market name(s) {bad} do not match {KEY_PATTERN.pattern}")
    if not name.strip():
        raise KeyFileError("a key needs a name (who or what uses it)")
    key_id, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_hex(16)
    entry = ApiKey(
        key_id, name.strip(), salt, _digest(salt, secret), tuple(sorted(set(markets))), now.isoformat()
    )
    return f"{KEY_PREFIX}_{key_id}_{secret}", entry


def _entry(raw: object, path: Path, index: int) -> ApiKey:
    if not isinstance(raw, dict):
        raise KeyFileError(f"{path}: keys[{index}] is not a mapping")
    try:
        return ApiKey(
            key_id=str(raw["id"]),
            name=str(raw.get("name", "")),
            salt=str(raw["salt"]),
            sha256=str(raw["sha256"]),
            markets=tuple(str(m) for m in raw.get("markets") or ()),
            created_at=str(raw.get("created_at", "")),
        )
    except KeyError as exc:
        raise KeyFileError(f"{path}: keys[{index}] lacks field {exc}") from exc


def read_keys(path: Path) -> dict[str, ApiKey]:
    """The keys stored in `path` by id; a missing file holds no keys."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise KeyFileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("keys", []), list):
        raise KeyFileError(f"{path}: expected `keys:` followed by a list of entries")
    entries = [_entry(item, path, i) for i, item in enumerate(raw.get("keys") or [])]
    return {e.key_id: e for e in entries}


def write_keys(path: Path, keys: dict[str, ApiKey]) -> None:
    """Replace the keys file atomically with `keys`."""
    entries = [
        {
            "id": k.key_id,
            "name": k.name,
            "markets": list(k.markets),
            "salt": k.salt,
            "sha256": k.sha256,
            "created_at": k.created_at,
        }
        for k in keys.values()
    ]
    text = FILE_HEADER + yaml.safe_dump({"keys": entries}, sort_keys=False)
    write_atomic(path, text.encode("utf-8"))


def add_key(path: Path, name: str, markets: list[str], now: dt.datetime) -> tuple[str, ApiKey]:
    """Create a key, store its hash in `path`, and return the key (shown once) with its entry."""
    keys = read_keys(path)
    key, entry = new_key(name, markets, now)
    write_keys(path, {**keys, entry.key_id: entry})
    return key, entry


def verify(keys: dict[str, ApiKey], presented: str | None) -> ApiKey | None:
    """The stored entry `presented` proves, or None (missing, malformed, unknown or wrong key)."""
    match = KEY_FORMAT.match(presented or "")
    if match is None:
        return None
    entry = keys.get(match.group(1))
    if entry is None:
        return None
    return entry if hmac.compare_digest(_digest(entry.salt, match.group(2)), entry.sha256) else None


class KeyFile:
    """The keys of a keys file, re-read whenever the file changes; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._signature: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def keys(self) -> dict[str, ApiKey]:
        """The stored keys as the file holds them now."""
        signature = self._stat()
        if signature != self._signature:
            with self._lock:
                if signature != self._signature:
                    self._keys = read_keys(self.path) if signature else {}
                    self._signature = signature
        return self._keys

    def verify(self, presented: str | None) -> ApiKey | None:
        """The entry `presented` proves, or None."""
        return verify(self.keys(), presented)
