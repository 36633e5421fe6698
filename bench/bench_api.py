"""API latency (issue 7): the scoring API under uvicorn on loopback, with a bounded load generator.

    .venv/bin/python bench/bench_api.py --customers 100000 --rate 500 --requests 10000 --write-doc

Release files are written by the real release code (`release_publish.publish`) from generated,
seeded scores, into a temporary data dir. The server is `uvicorn serving.api:app` (what `make serve`
runs: one process, one worker) over that dir. The load generator runs in this process, on asyncio
with raw keep-alive HTTP/1.1 connections (a few tens of microseconds of its own CPU per request, so
that on 2 cores the generator does not take the server's CPU, as a threaded httpx client did):

- open loop at `--rate` req/s: request i is due at start + i / rate and goes out on the first idle
  one of `--connections` connections; latency runs from the due time to the last response byte, so
  waiting for a connection counts (no coordinated omission), and the generator's own lateness is
  reported as `p99_send_lag_ms`;
- closed loop: every connection sends its next request as soon as the last one answered.

Each phase stops at `--requests` requests or `--time-limit` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import httpx
import numpy as np
import pandas as pd

from factory_assets.core.release.publish import publish
from factory_assets.core.release.scoring import percentile_ranks
from factory_assets.core.release.store import ReleaseStore
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


async def _connection(
    port: int, jobs: asyncio.Queue, stop: float, out: list[tuple[float, float, float, int]]
) -> None:
    """One keep-alive HTTP/1.1 connection taking (due, path) jobs until the queue hands it None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (job := await jobs.get()) is not None:
            due, path = job
            sent = time.perf_counter()
            due = sent if due is None else due  # closed loop: the request is due when it can go
            if sent > stop:
                continue
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode("ascii"))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            out.append((sent, time.perf_counter(), due, status))
    finally:
        writer.close()


async def _load(port: int, paths: list[str], connections: int, rate: float | None, limit: float) -> list:
    """Open loop: request i is due at start + i / rate and goes out on the first idle connection.

    Closed loop (rate None): every connection sends its next request as soon as the last answered.
    """
    jobs: asyncio.Queue = asyncio.Queue(maxsize=1)
    out: list[tuple[float, float, float, int]] = []
    start = time.perf_counter() + 0.2
    stop = start + limit
    workers = [asyncio.create_task(_connection(port, jobs, stop, out)) for _ in range(connections)]
    for i, path in enumerate(paths):
        due = start + i / rate if rate else None
        if rate and (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        if time.perf_counter() > stop:
            break
        await jobs.put((due, path))
    for _ in workers:
        await jobs.put(None)
    await asyncio.gather(*workers)
    return out


def run_load(port: int, paths: list[str], connections: int, rate: float | None, limit: float) -> dict:
    """Send `paths` (open loop at `rate` req/s, or closed loop when None); latency percentiles in ms.

    Latency runs from the moment a request was due (open loop) to its last response byte, so a
    request that waited for a free connection or a late generator counts its wait (no coordinated
    omission); `p99_send_lag_ms` says how much of that was the generator's own lateness.
    """
    rows = np.array(asyncio.run(_load(port, paths, connections, rate, limit)), dtype=float)
    latency = (rows[:, 1] - rows[:, 2]) * 1000
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
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
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
                    figures = run_load(port, paths, args.connections, rate, args.time_limit)
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
            f"(asyncio, {args.connections} keep-alive connections), {args.requests:,} requests per phase "
            f"(limit {args.time_limit:.0f} s). Latency from the request's due time to its last byte; "
            f"`p99_send_lag_ms` is how late the open-loop generator sent (large = the generator or the "
            f"server could not keep up); "
            f"`server_cpu_ms_per_req` is the server process's CPU time per request (/proc)."
            f"\n\n{table}"
        )
        common.write_section("api", common.section("API latency (issue 7)", body, loads))


if __name__ == "__main__":
    main()
