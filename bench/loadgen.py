"""Closed-loop HTTP load: C clients, each sending its next request when the last answers.

wrk (Debian package `wrk`) is the load generator: C with epoll, so the client
costs little of the machine the servers share. Without wrk, an asyncio client
does the same thing (at a higher CPU cost; the results say which one ran).
Both run for a fixed time and report completed requests, errors and latency
percentiles of the requests that completed.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .httpclient import Connection

# wrk's summary as one JSON line (its percentiles are in microseconds).
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class LoadResult:
    tool: str
    clients: int
    seconds: float
    completed: int  # requests answered 2xx/3xx
    errors: int  # connection errors, timeouts, non-2xx answers
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, clients: int, seconds: float, timeout: float, script_dir: Path, threads: int = 2
) -> LoadResult:
    script = script_dir / "wrk_report.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    argv = [
        "wrk",
        f"--threads={min(threads, clients)}",
        f"--connections={clients}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        f"--script={script}",
        url,
    ]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + timeout + 30, check=False
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    duration = data["duration_us"] / 1e6
    errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    # wrk counts non-2xx answers among "requests"; completed means answered well.
    completed = max(0, data["requests"] - data["status"])
    has_latency = data["requests"] > 0
    return LoadResult(
        tool="wrk",
        clients=clients,
        seconds=round(duration, 3),
        completed=completed,
        errors=errors,
        rps=round(completed / duration, 1) if duration else 0.0,
        p50_ms=data["p50_us"] / 1000 if has_latency else None,
        p90_ms=data["p90_us"] / 1000 if has_latency else None,
        p99_ms=data["p99_us"] / 1000 if has_latency else None,
        max_ms=data["max_us"] / 1000 if has_latency else None,
    )


def _percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def _python_load(url: str, clients: int, seconds: float, timeout: float) -> LoadResult:
    base, _, path = url.partition("://")[2].partition("/")
    path = "/" + path
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        nonlocal errors
        connection = Connection(f"http://{base}", timeout=timeout)
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await connection.request("GET", path)
                except (TimeoutError, OSError, Exception):
                    errors += 1
                    await asyncio.sleep(0.01)
                    continue
                if response.status < 400:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors += 1
        finally:
            await connection.close()

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    # Like wrk: stop at the deadline, whatever is still in flight is not counted.
    await asyncio.wait(tasks, timeout=seconds + 0.05)
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    done = sorted(latencies)
    return LoadResult(
        tool="python-asyncio",
        clients=clients,
        seconds=round(elapsed, 3),
        completed=len(done),
        errors=errors,
        rps=round(len(done) / elapsed, 1),
        p50_ms=_percentile(done, 50),
        p90_ms=_percentile(done, 90),
        p99_ms=_percentile(done, 99),
        max_ms=done[-1] if done else None,
    )


def run_load(
    url: str, clients: int, seconds: float, timeout: float, script_dir: Path, tool: str = "auto"
) -> LoadResult:
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(url, clients, seconds, timeout, script_dir)
    return asyncio.run(_python_load(url, clients, seconds, timeout))
