"""Shared helpers for the benchmark scripts: timing, peak RSS, machine facts, and docs/benchmarks.md.

Every script prints its figures and can replace its own section of `docs/benchmarks.md`
(between `<!-- bench:<name> -->` markers), so a rerun updates that section only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DOC = REPO_ROOT / "docs" / "benchmarks.md"
PACKAGES = ("dagster", "duckdb", "pandas", "catboost", "numpy", "fastapi", "uvicorn", "httpx", "pyarrow")
DOC_HEADER = """# Benchmarks

Measured with the scripts in `bench/` (not part of `make test`). Each section below is written by its
script (`--write-doc`) and says the machine, the versions, the command, the sizes run and the load
on the machine while measuring: this machine is shared with other engineers running tests, so
absolute times are noisy; ratios are measured within one run.
"""


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its waited-for children), in MB (Linux: KiB)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current resident memory of this process, in MB (from /proc, Linux only)."""
    pages = int(Path("/proc/self/statm").read_text(encoding="utf-8").split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Timer:
    """Wall-clock seconds of a `with` block (`timer.seconds` after it ends)."""

    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


@contextlib.contextmanager
def timed(label: str, into: dict[str, float]) -> Iterator[None]:
    """Record the wall-clock seconds of the block under `into[label]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[label] = time.perf_counter() - start


def growth_exponent(sizes: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(size): 1.0 is linear growth."""
    if len(sizes) < 2:
        return math.nan
    xs = [math.log(s) for s in sizes]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def load_note() -> str:
    """The 1/5/15-minute load averages and the core count, to qualify the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return math.nan


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape the figures."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> str:
    """One line: CPU, cores, memory, OS."""
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gb():.0f} GB RAM, "
        f"{platform.system()} {platform.release()}"
    )


def command_line() -> str:
    """The command that ran this script, relative to the repo."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_ROOT)
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def markdown_table(rows: list[dict[str, object]]) -> str:
    """A GitHub markdown table from a list of dicts with the same keys."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def section(title: str, body: str, loads: list[str]) -> str:
    """A section: title, run date, machine, versions, command, the body, and the load while measuring."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pinned = ", ".join(f"{k} {v}" for k, v in versions().items())
    load_lines = "\n".join(f"- {line}" for line in loads)
    return (
        f"## {title}\n\n"
        f"- run: {stamp}\n- machine: {machine()}\n- versions: {pinned}\n"
        f"- command: `{command_line()}`\n\n{body.strip()}\n\n"
        f"Load on the machine while measuring:\n{load_lines}\n"
    )


def write_section(name: str, text: str, doc: Path = DOC) -> None:
    """Replace (or append) the section between `<!-- bench:name -->` markers in docs/benchmarks.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    current = doc.read_text(encoding="utf-8") if doc.exists() else DOC_HEADER
    block = f"{start}\n{text.strip()}\n{end}"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        _, tail = rest.split(end, 1)
        updated = f"{head}{block}{tail}"
    else:
        updated = f"{current.rstrip()}\n\n{block}\n"
    doc.write_text(updated, encoding="utf-8")


def write_specs(folder: Path, count: int) -> list[str]:
    """`count` specs in `folder`: the demo's own first, then seeded copies of them."""
    base = sorted((REPO_ROOT / "model_specs").glob("*.yaml"))
    names = []
    for k in range(count):
        source = base[k % len(base)]
        spec = yaml.safe_load(source.read_text(encoding="utf-8"))
        copy = k // len(base)
        name = source.stem if copy == 0 else f"{source.stem}_s{copy}"
        if copy:
            spec.setdefault("model", {})["seed"] = 42 + copy
            spec.setdefault("sampling", {})["seed"] = 42 + copy
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        names.append(name)
    return names
