"""Long-running processes started by `factory distributed up`, tracked by pid files, stopped by their id.

Each process runs in its own session (so its process group is its own and holds its children, such as
a Celery worker's pool or the daemon's code server), writes to `<logs>/<name>.log`, and is recorded in
`<pids>/<name>.pid` with the executable it was started from; a pid whose process is gone, a zombie, or
now another program is not ours and is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ProcessSpec:
    """A process to start: its name (also its log and pid file), command line, environment and folder."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessTable:
    """The pid and log folders of one machine's processes."""

    pids: Path
    logs: Path

    def log(self, name: str) -> Path:
        """The log file of process `name`."""
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        """The pid file of process `name`."""
        return self.pids / f"{name}.pid"

    def names(self) -> list[str]:
        """Every process with a pid file, sorted."""
        return sorted(p.stem for p in self.pids.glob("*.pid")) if self.pids.is_dir() else []

    def pid(self, name: str) -> int | None:
        """The pid of `name` while it runs the program it was started as, else None."""
        path = self.pid_file(name)
        if not path.is_file():
            return None
        pid_text, _, program = path.read_text(encoding="utf-8").partition("\n")
        pid = int(pid_text)
        return pid if _runs(pid, program.strip()) else None

    def start(self, spec: ProcessSpec) -> int:
        """Start `spec` unless it already runs; its pid either way."""
        running = self.pid(spec.name)
        if running is not None:
            return running
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log(spec.name).open("ab") as log:
            process = subprocess.Popen(
                spec.command,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file(spec.name).write_text(f"{process.pid}\n{spec.command[0]}\n", encoding="utf-8")
        return process.pid

    def stop(self, name: str, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """SIGTERM `name`'s process group, SIGKILL it after `timeout`; True if it was running."""
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        # the group too: a child that outlived its leader (a pool process, a code server) goes with it
        _signal_group(pid, signal.SIGKILL)
        return True

    def kill(self, name: str) -> int:
        """SIGKILL `name`'s whole process group at once, as a lost machine would; its pid."""
        pid = self.pid(name)
        if pid is None:
            raise ProcessLookupError(f"process '{name}' is not running (pid file {self.pid_file(name)})")
        _signal_group(pid, signal.SIGKILL)
        return pid


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _runs(pid: int, program: str) -> bool:
    """True while `pid` is alive and still the program it was started as (pids are reused)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(program.encode() in part for part in cmdline[:2])
