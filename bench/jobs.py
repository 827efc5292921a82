"""Jobs end to end: create N jobs over HTTP as fast as C clients can, wait until all are done.

Throughput and latency come from the server's own timestamps (created_at,
finished_at), so the polling interval does not blur them:
  jobs/s  = N / (last finished_at - first created_at)
  latency = finished_at - created_at of each job (create-to-done)
The client watches progress with the changes feed (GET /api/jobs?since=cursor),
one request per poll whatever N is, like the demo page.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from .httpclient import Connection

FINISHED = {"done", "failed"}
POLL_FAILURE_GRACE = 30.0  # seconds of failing polls before a run is given up


@dataclass
class JobsResult:
    jobs: int
    clients: int
    batch: int
    create_seconds: float  # client wall time to get every create answered
    wall_seconds: float  # client wall time until the feed showed all finished
    server_seconds: float  # first created_at to last finished_at
    jobs_per_s: float
    created_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    failed: int
    create_errors: int
    web_pids: int
    worker_pids: int

    def as_dict(self) -> dict:
        return asdict(self)


def _percentile(sorted_values: list[float], p: float) -> float:
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def _current_cursor(conn: Connection) -> str:
    """Page through the feed once (untimed) so polling starts from now."""
    cursor = ""
    while True:
        page = (await conn.request("GET", f"/api/jobs?since={cursor}")).json()
        cursor = page["cursor"]
        if not page.get("more"):
            return cursor


async def run_jobs(
    base_url: str,
    jobs: int,
    clients: int,
    batch: int = 1,
    io_wait_ms: int = 0,
    cpu_iterations: int = 0,
    timeout: float = 300.0,
    progress: Callable[[int, int, int], None] | None = None,
) -> JobsResult:
    watcher = Connection(base_url)
    cursor = await _current_cursor(watcher)
    params = {"io_wait_ms": io_wait_ms, "cpu_iterations": cpu_iterations}
    ids: set[int] = set()
    create_errors = 0
    remaining = jobs
    started = time.perf_counter()

    async def creator() -> None:
        nonlocal remaining, create_errors
        conn = Connection(base_url)
        try:
            while remaining > 0:
                count = min(batch, remaining)
                remaining -= count
                try:
                    if batch == 1:
                        response = await conn.request("POST", "/api/jobs", params)
                        new = [response.json()["id"]] if response.status == 202 else []
                    else:
                        response = await conn.request(
                            "POST", "/api/jobs/batch", {"count": count, **params}
                        )
                        new = response.json()["ids"] if response.status == 202 else []
                except (TimeoutError, OSError, ValueError, KeyError):
                    new = []
                create_errors += count - len(new)
                ids.update(new)
        finally:
            await conn.close()

    creators = asyncio.gather(*(creator() for _ in range(clients)))
    seen: dict[int, dict] = {}
    created_at: float | None = None
    deadline = started + timeout
    failing_since: float | None = None
    try:
        while True:
            if created_at is None and creators.done():
                creators.result()
                created_at = time.perf_counter()
            try:
                page = (await watcher.request("GET", f"/api/jobs?since={cursor}")).json()
                failing_since = None
            except (TimeoutError, OSError, ValueError) as exc:
                # A hiccup (a restarting worker) is survivable; a dead server is not.
                failing_since = failing_since or time.perf_counter()
                if time.perf_counter() - failing_since > POLL_FAILURE_GRACE:
                    raise RuntimeError(f"polling {base_url} keeps failing: {exc!r}") from exc
                await asyncio.sleep(0.5)
                continue
            cursor = page["cursor"]
            for job in page["jobs"]:
                seen[job["id"]] = job
            finished = sum(1 for i in ids if seen.get(i, {}).get("status") in FINISHED)
            if progress:
                progress(len(ids), finished, jobs)
            if created_at is not None and finished == len(ids):
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{finished} of {len(ids)} jobs finished after {timeout:.0f} s")
            if not page.get("more"):
                await asyncio.sleep(0.1)
    finally:
        if not creators.done():
            creators.cancel()
        await asyncio.gather(creators, return_exceptions=True)
        await watcher.close()
    wall = time.perf_counter() - started
    if not ids:
        raise RuntimeError(f"no job was created ({create_errors} create errors)")

    mine = [seen[i] for i in ids]
    created = [datetime.fromisoformat(j["created_at"]) for j in mine]
    done = [j for j in mine if j["status"] == "done"]
    latencies = sorted(
        (
            datetime.fromisoformat(j["finished_at"]) - datetime.fromisoformat(j["created_at"])
        ).total_seconds()
        * 1000
        for j in done
    ) or [math.nan]
    last = max(datetime.fromisoformat(j["finished_at"]) for j in mine if j["finished_at"])
    server_seconds = (last - min(created)).total_seconds()
    return JobsResult(
        jobs=len(ids),
        clients=clients,
        batch=batch,
        create_seconds=round((created_at or time.perf_counter()) - started, 3),
        wall_seconds=round(wall, 3),
        server_seconds=round(server_seconds, 3),
        jobs_per_s=round(len(done) / server_seconds, 1) if server_seconds > 0 else math.nan,
        created_per_s=round(len(ids) / ((created_at or time.perf_counter()) - started), 1),
        p50_ms=round(_percentile(latencies, 50), 1),
        p90_ms=round(_percentile(latencies, 90), 1),
        p99_ms=round(_percentile(latencies, 99), 1),
        failed=len(mine) - len(done),
        create_errors=create_errors,
        web_pids=len({j["web_pid"] for j in mine}),
        worker_pids=len({j["worker_pid"] for j in done}),
    )
