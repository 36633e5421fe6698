"""API latency (issue 7): the scoring API under uvicorn on loopback, with a bounded load generator.

    .venv/bin/python bench/bench_api.py --customers 100000 --rate 500 --requests 10000 --write-doc

Release files are written by the real release code (`release_publish.publish`) from generated,
seeded scores, into a temporary data dir. The server is `uvicorn serving.api:app` (what `make serve`
runs: one process, one worker) over that dir. The load generator runs in this process:

- open loop at `--rate` req/s: request i is sent at start + i / rate by one of `--threads` threads
  (each with its own keep-alive `httpx.Client`); latency is measured from the send, and the lag
  behind the schedule is reported too (a slow server shows up there, not hidden);
- closed loop: `--threads` threads send back to back, for the maximum throughput.

Each phase stops at `--requests` requests or `--time-limit` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common
import httpx
import numpy as np
import pandas as pd

from factory_assets.core.release_publish import publish
from factory_assets.core.release_store import ReleaseStore
from factory_assets.core.scoring import percentile_ranks
from factory_assets.core.specs import OutputSpec

MARKET, MODEL = "bench", "churn"


def scores_frame(customers: int, seed: int) -> pd.DataFrame:
    """Seeded scores shaped like the `scores` stage output (what `publish` takes)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:08d}" for i in range(customers)])
    probability = rng.beta(1.2, 12.0, customers)
    percentile, decile = percentile_ranks(probability, ids)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "snapshot_date": pd.Timestamp("2026-10-31"),
            "probability": probability,
            "percentile": percentile,
            "decile": decile,
            "model_version": "bench-version",
        }
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """`uvicorn serving.api:app` over `data_dir/releases`; waits until /health answers."""
    env = {**os.environ, "FACTORY_DATA_DIR": str(data_dir)}
    command = [
        str(Path(sys.executable).parent / "uvicorn"), "serving.api:app", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers),
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=common.REPO_ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"uvicorn did not answer on port {port} within 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _paths(kind: str, count: int, customers: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    if kind == "lookup":
        return [f"/scores/{MARKET}/{MODEL}/C{i:08d}" for i in rng.integers(0, customers, count)]
    return [f"/scores/{MARKET}/{MODEL}/top?n=100" for _ in range(count)]


def _worker(base: str, paths: list[str], due: list[float] | None, stop: float, out: list) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for i, path in enumerate(paths):
            if due is not None:
                wait = due[i] - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            sent = time.perf_counter()
            if sent > stop:
                return
            status = client.get(path).status_code
            done = time.perf_counter()
            out.append((sent, done, due[i] if due is not None else sent, status))


def run_load(base: str, paths: list[str], threads: int, rate: float | None, limit: float) -> dict:
    """Send `paths` (open loop at `rate` req/s, or closed loop when None); latency percentiles in ms."""
    start = time.perf_counter() + 0.2
    due = [start + i / rate for i in range(len(paths))] if rate else None
    results: list[list] = [[] for _ in range(threads)]
    workers = [
        threading.Thread(
            target=_worker,
            args=(base, paths[k::threads], due[k::threads] if due else None, start + limit, results[k]),
        )
        for k in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rows = np.array([r for part in results for r in part], dtype=float)
    latency = (rows[:, 1] - rows[:, 0]) * 1000
    lag = (rows[:, 0] - rows[:, 2]) * 1000
    elapsed = rows[:, 1].max() - rows[:, 0].min()
    return {
        "requests": len(rows),
        "errors": int((rows[:, 3] != 200).sum()),
        "throughput_rps": round(float(len(rows) / elapsed), 1),
        "p50_ms": round(float(np.percentile(latency, 50)), 2),
        "p95_ms": round(float(np.percentile(latency, 95)), 2),
        "p99_ms": round(float(np.percentile(latency, 99)), 2),
        "max_ms": round(float(latency.max()), 1),
        "p99_send_lag_ms": round(float(np.percentile(lag, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="rows in the release")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests per second")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per phase")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase at most")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--write-doc", action="store_true", help="replace this section of docs/benchmarks.md")
    args = parser.parse_args()
    loads, rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        data_dir = Path(tmp)
        with common.Timer() as built:
            publish(
                ReleaseStore(data_dir / "releases"), MARKET, MODEL, scores_frame(args.customers, args.seed),
                OutputSpec(format="both"), dt.datetime(2026, 11, 1, 6, 0),
            )  # fmt: skip
        print(f"release of {args.customers:,} rows written in {built.seconds:.1f} s")
        port = _free_port()
        server = start_server(data_dir, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        try:
            httpx.get(f"{base}/scores/{MARKET}/{MODEL}/top?n=1", timeout=60).raise_for_status()  # load once
            for kind in ("lookup", "top"):
                paths = _paths(kind, args.requests, args.customers, args.seed)
                for mode, rate in ((f"open {args.rate:.0f} req/s", args.rate), ("closed loop", None)):
                    loads.append(f"{kind}, {mode}, before: {common.load_note()}")
                    cpu_before = cpu_seconds(server.pid)
                    figures = run_load(base, paths, args.threads, rate, args.time_limit)
                    cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / figures["requests"]
                    figures["server_cpu_ms_per_req"] = round(cpu_ms, 2)
                    label = "lookup" if kind == "lookup" else "top n=100"
                    rows.append({"request": label, "load": mode, **figures})
                    print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    table = common.markdown_table(rows)
    print(table)
    if args.write_doc:
        body = (
            f"Release of {args.customers:,} customers (format `both`); server `uvicorn serving.api:app`, "
            f"{args.workers} worker process(es); load generator in another process on the same 2 cores "
            f"({args.threads} threads, keep-alive `httpx` clients), {args.requests:,} requests per phase "
            f"(limit {args.time_limit:.0f} s). Latency from send to response; `p99_send_lag_ms` is how "
            f"late the open-loop generator sent (large = the generator or the server could not keep up); "
            f"`server_cpu_ms_per_req` is the server process's CPU time per request (/proc)."
            f"\n\n{table}"
        )
        common.write_section("api", common.section("API latency (issue 7)", body, loads))


if __name__ == "__main__":
    main()
