"""CAR snapshot files in the landing folder: list them (cheaply, by name and stat) and read them.

Layout: `<landing>/<market>/car_<YYYY-MM-DD>.parquet|csv` (`contract.SNAPSHOT_FILE`). Listing never
opens a file, so the sensor can call it every tick; problems are reported per file, never raised,
so one bad file does not hold back the other markets.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from factory_assets.core.contract import SNAPSHOT_FILE
from factory_assets.core.files import file_sha256
from factory_assets.core.specs import KEY_PATTERN

IN_PROGRESS_SUFFIXES = (".part", ".tmp")


class CarReadError(ValueError):
    """A CAR file that cannot be read; the message names the file and the cause."""


@dataclass(frozen=True)
class SnapshotFile:
    """One landed CAR snapshot file of one market (not opened yet)."""

    market: str
    snapshot_date: dt.date
    path: Path
    fmt: str
    mtime: float
    size: int

    @property
    def name(self) -> str:
        """`<market>/<file name>`: how the file is named in messages, cursors and run keys."""
        return f"{self.market}/{self.path.name}"

    def content_hash(self) -> str:
        """SHA-256 of the file bytes: a changed file is re-ingested, an untouched one is not."""
        return file_sha256(self.path)


@dataclass(frozen=True)
class FileProblem:
    """A landed file (or market folder) that cannot be ingested, and why."""

    path: Path
    reason: str
    market: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class LandingScan:
    """What the landing folder holds right now: valid snapshot files, problems, files still settling."""

    files: tuple[SnapshotFile, ...] = ()
    problems: tuple[FileProblem, ...] = ()
    pending: tuple[Path, ...] = field(default=())

    def markets(self) -> list[str]:
        """Markets with at least one valid snapshot file, sorted."""
        return sorted({f.market for f in self.files})

    def files_for(self, market: str) -> list[SnapshotFile]:
        """The market's valid snapshot files, oldest first."""
        return sorted((f for f in self.files if f.market == market), key=lambda f: f.snapshot_date)

    def problems_for(self, market: str) -> list[FileProblem]:
        """Problems with files inside the market's folder."""
        return [p for p in self.problems if p.market == market]


def _ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(IN_PROGRESS_SUFFIXES)


def _parse_file(market: str, path: Path, stat_mtime: float, size: int) -> SnapshotFile | FileProblem:
    match = SNAPSHOT_FILE.match(path.name)
    if match is None:
        reason = "file name does not match car_<YYYY-MM-DD>.parquet|csv"
        return FileProblem(path, reason, market)
    try:
        snapshot = dt.date.fromisoformat(match.group(1))
    except ValueError:
        return FileProblem(path, f"'{match.group(1)}' in the file name is not a valid date", market)
    return SnapshotFile(market, snapshot, path, match.group(2), stat_mtime, size)


def _duplicates(files: list[SnapshotFile]) -> tuple[list[SnapshotFile], list[FileProblem]]:
    by_key: dict[tuple[str, dt.date], list[SnapshotFile]] = {}
    for item in files:
        by_key.setdefault((item.market, item.snapshot_date), []).append(item)
    kept, problems = [], []
    for group in by_key.values():
        if len(group) == 1:
            kept.append(group[0])
            continue
        names = ", ".join(sorted(g.path.name for g in group))
        for item in group:
            reason = f"two files for snapshot {item.snapshot_date} ({names}): remove one"
            problems.append(FileProblem(item.path, reason, item.market))
    return kept, problems


def _scan_market(folder: Path, cutoff: float) -> tuple[list[SnapshotFile], list[FileProblem], list[Path]]:
    files: list[SnapshotFile] = []
    problems: list[FileProblem] = []
    pending: list[Path] = []
    for path in sorted(folder.iterdir()):
        if _ignored(path):
            continue
        if path.is_dir():
            problems.append(FileProblem(path, "unexpected sub-folder in a market folder", folder.name))
            continue
        stat = path.stat()
        if stat.st_mtime > cutoff:
            pending.append(path)
            continue
        parsed = _parse_file(folder.name, path, stat.st_mtime, stat.st_size)
        (files if isinstance(parsed, SnapshotFile) else problems).append(parsed)
    return files, problems, pending


def _hidden_market_problem(entry: Path) -> FileProblem | None:
    """A folder whose name starts with '.' that is, or looks like, a market folder: a problem to report.

    Decision: a '..' folder (`..x`) is always reported (no tool hides a folder that way; it is a
    mistyped market). Another hidden folder is reported only when it holds a file named like a CAR
    snapshot (`.uk/car_2025-01-31.parquet`): a market hidden by mistake. Other hidden folders stay
    ignored silently, because landing folders on shared drives routinely hold `.git`, `.Trash-1000`,
    `.snapshot` or a sync tool's cache, and reporting those on every sensor tick would bury the
    problems that matter. (Their names are often valid market codes after the dot, so that rule
    would not tell them apart.)
    """
    if not (entry.name.startswith(".") and entry.is_dir()):
        return None
    rule = f"a market folder is named by a valid market code ({KEY_PATTERN.pattern})"
    if entry.name.startswith(".."):
        return FileProblem(entry, f"market folder '{entry.name}' is not a valid partition key: {rule}")
    snapshots = sorted(p.name for p in entry.iterdir() if SNAPSHOT_FILE.match(p.name))
    if not snapshots:
        return None
    return FileProblem(
        entry,
        f"hidden folder '{entry.name}' holds CAR file(s) ({', '.join(snapshots[:3])}) but is ignored "
        f"because its name starts with '.': {rule}; rename it to land the market",
    )


def scan_landing(landing_dir: Path, settle_seconds: float = 2.0, now: float | None = None) -> LandingScan:
    """List the landing folder by name and stat only (no file is opened).

    Ignored: names starting with '.', ending in `.part`/`.tmp`, and files modified less than
    `settle_seconds` ago (a copy in progress; picked up once settled). Reported as problems: files
    outside a market folder, bad names, market folders that are not valid partition keys (a '..'
    folder, or a hidden folder holding CAR files: `_hidden_market_problem`), and two files for one
    snapshot (both are held back until one is removed).
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return LandingScan()
    cutoff = (time.time() if now is None else now) - settle_seconds
    files: list[SnapshotFile] = []
    problems: list[FileProblem] = []
    pending: list[Path] = []
    for entry in sorted(landing_dir.iterdir()):
        hidden = _hidden_market_problem(entry)
        if hidden is not None:
            problems.append(hidden)
            continue
        if _ignored(entry):
            continue
        if not entry.is_dir():
            problems.append(FileProblem(entry, "file outside a market folder (<landing>/<market>/...)"))
        elif not KEY_PATTERN.match(entry.name):
            reason = f"market folder '{entry.name}' is not a valid partition key ({KEY_PATTERN.pattern})"
            problems.append(FileProblem(entry, reason))
        else:
            found, bad, waiting = _scan_market(entry, cutoff)
            files += found
            problems += bad
            pending += waiting
    kept, duplicate_problems = _duplicates(files)
    return LandingScan(tuple(kept), tuple(problems + duplicate_problems), tuple(pending))


def read_car_file(path: Path, fmt: str | None = None, customer_key: str = "customer_id") -> pd.DataFrame:
    """Read one CAR file (parquet via pyarrow, CSV as UTF-8); raise `CarReadError` naming the file.

    In a CSV the customer key is read as text so that IDs such as '007' keep their leading zeros.
    """
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path, engine="pyarrow")
        elif fmt == "csv":
            frame = pd.read_csv(path, encoding="utf-8", dtype={customer_key: "str"})
            _refuse_other_delimiter(path, frame)
        else:
            raise CarReadError(f"{path}: unsupported CAR file format '{fmt}' (parquet or csv)")
    except UnicodeDecodeError as exc:
        raise CarReadError(f"{path}: cannot read the file as {fmt}: {encoding_hint(path)}") from exc
    except (OSError, ValueError, pa.ArrowException) as exc:
        if isinstance(exc, CarReadError):
            raise
        raise CarReadError(f"{path}: cannot read the file as {fmt}: {type(exc).__name__}: {exc}") from exc
    return frame.reset_index(drop=True)


_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def encoding_hint(path: Path) -> str:
    """Why a CSV is not UTF-8: the first bad byte with its line and offset, a likely encoding, the fix.

    The whole file is read again (only on this error path): the decoder's own position is relative
    to the chunk pandas was reading, not to the file.
    """
    raw = path.read_bytes()
    if raw.startswith(_UTF16_MARKS):
        return "not UTF-8 (it starts with a UTF-16 byte-order mark): re-export it as UTF-8 (CSV UTF-8)"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        start = raw.rfind(b"\n", 0, exc.start) + 1
        excerpt = raw[start : exc.start + 10].decode("utf-8", errors="replace").strip()
        return (
            f"not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}, byte offset {exc.start}: "
            f"{excerpt[:60]!r}; perhaps latin-1 / Windows-1252): re-export it as UTF-8 (UnicodeDecodeError)"
        )
    return "not readable as UTF-8: re-export it as UTF-8 (UnicodeDecodeError)"


OTHER_DELIMITERS = (";", "\t", "|")


def _refuse_other_delimiter(path: Path, frame: pd.DataFrame) -> None:
    """A CSV read as comma-separated into one column whose header holds another delimiter: say so."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    found = [d for d in OTHER_DELIMITERS if d in header]
    if found:
        shown = "tab" if found[0] == "\t" else f"'{found[0]}'"
        raise CarReadError(
            f"{path}: read as comma-separated CSV the file has one column '{header[:80]}': it looks "
            f"{shown}-delimited; deliver the CSV with ',' as the delimiter"
        )


@dataclass(frozen=True)
class LandingFolder:
    """The landing folder as a CAR source: `scan()` to list, `read(file)` to load a snapshot."""

    root: Path
    settle_seconds: float = 2.0

    def scan(self, now: float | None = None) -> LandingScan:
        """The folder's current valid files and problems (see `scan_landing`)."""
        return scan_landing(self.root, self.settle_seconds, now)

    def read(self, file: SnapshotFile, customer_key: str = "customer_id") -> pd.DataFrame:
        """Load one snapshot file."""
        return read_car_file(file.path, file.fmt, customer_key)
