"""A public dyno under abuse: bounds hold, and a well-behaved client is still served.

One dyno, two runs on loopback:

- quiet: a normal client creates one job a second (the default job: 100 ms of
  I/O wait, 20,000 hash rounds) and nothing else happens;
- abuse: the same, while an abusive client sends maximal batches (1,000
  default jobs) as fast as it is answered, from ABUSERS connections, ignoring
  Retry-After, and writes a new made-up address first in X-Forwarded-For each
  time (what a client can do behind a router that appends).

The test plays Heroku's router: each client's X-Forwarded-For ends with its own
address (TRUSTED_PROXY_HOPS=1, the default). It also plays the scheduler: it
runs `manage.py prune_jobs` every PRUNE_EVERY seconds, with retention scaled
down (JOBS_KEEP_FINISHED, BROKER_KEEP_DELIVERED) so pruning has work to do
within a minute; the backlog bounds are the production defaults.

It asserts the bounds (backlog, the abuser's backlog, job rows, broker
messages, database size) were never exceeded in any sample, that the abuser
got nothing but 202 and 429, and that every normal job completed. Latencies
are figures (printed, and written to tests/artifacts/faults.json), not
assertions: the machine is shared.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from tests.support.dyno import ROOT, Dyno

pytestmark = pytest.mark.slow

ABUSE_SECONDS = float(os.environ.get("FAULT_ABUSE_SECONDS", "60"))
QUIET_SECONDS = float(os.environ.get("FAULT_QUIET_SECONDS", "30"))
ABUSERS = int(os.environ.get("FAULT_ABUSERS", "4"))
PRUNE_EVERY = 10.0
SAMPLE_EVERY = 0.5
ABUSER, NORMAL = "198.51.100.66", "203.0.113.7"
ENV = {
    "JOBS_KEEP_FINISHED": "300",
    "BROKER_KEEP_DELIVERED": "300",
    "BROKER_KEEP_DELIVERED_SECONDS": "600",
}
# The production defaults of app/doubleboiler/settings.py the bounds come from.
MAX_BACKLOG, CLIENT_MAX_BACKLOG, MAX_BATCH = 5000, 1000, 1000
BUDGET_BYTES = 200 * 2**20


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Http:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, port: int, client: str) -> None:
        self.port, self.client = port, client
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict | None = None, spoof: str = ""):
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        forwarded = f"{spoof}, {self.client}" if spoof else self.client
        headers = {"X-Forwarded-For": forwarded, "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            payload = response.read()
            return response.status, payload
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Run:
    name: str
    statuses: Counter = field(default_factory=Counter)
    abuser_errors: list[str] = field(default_factory=list)
    abuser_jobs: int = 0
    normal_ids: list[int] = field(default_factory=list)
    normal_errors: list[str] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    samples: list[dict] = field(default_factory=list)
    prunes: list[dict] = field(default_factory=list)


def abuser(port: int, stop: threading.Event, run: Run, lock: threading.Lock) -> None:
    http_ = Http(port, ABUSER)
    while not stop.is_set():
        spoof = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(256)}"
        try:
            status, payload = http_.request(
                "POST", "/api/jobs/batch", {"count": MAX_BATCH}, spoof=spoof
            )
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                run.abuser_errors.append(type(exc).__name__)
            continue
        with lock:
            run.statuses[status] += 1
            if status == 202:
                run.abuser_jobs += len(json.loads(payload)["ids"])
            elif status != 429:
                run.abuser_errors.append(f"{status} {payload[:120]!r}")
    http_.close()


def normal_client(port: int, seconds: float, run: Run) -> None:
    """One job a second, on a fixed schedule (open loop)."""
    http_ = Http(port, NORMAL)
    started = time.monotonic()
    tick = 0
    while time.monotonic() - started < seconds:
        begin = time.monotonic()
        try:
            status, payload = http_.request("POST", "/api/jobs", {})
            run.create_ms.append((time.monotonic() - begin) * 1000)
            if status == 202:
                run.normal_ids.append(json.loads(payload)["id"])
            else:
                run.normal_errors.append(f"{status} {payload[:200]!r}")
        except (OSError, http.client.HTTPException) as exc:
            run.normal_errors.append(type(exc).__name__)
        tick += 1
        time.sleep(max(0.0, started + tick - time.monotonic()))
    http_.close()


def prober(port: int, stop: threading.Event, run: Run) -> None:
    """/healthz and the demo page, each every SAMPLE_EVERY seconds, as a visitor would."""
    http_ = Http(port, "203.0.113.200")
    while not stop.is_set():
        for path, timings in (("/healthz", run.health_ms), ("/", run.page_ms)):
            begin = time.monotonic()
            try:
                status, _ = http_.request("GET", path)
                timings.append((time.monotonic() - begin) * 1000)
                run.health_failures += status != 200
            except (OSError, http.client.HTTPException):
                run.health_failures += 1
        stop.wait(SAMPLE_EVERY)
    http_.close()


def database_sample(path: str) -> dict:
    """The database as the app sees it, read beside it (WAL readers do not block)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        one = lambda sql, *args: db.execute(sql, args).fetchone()[0]  # noqa: E731
        page_size = one("PRAGMA page_size")
        return {
            "backlog": one("SELECT COUNT(*) FROM jobs_job WHERE status IN ('queued', 'running')"),
            "abuser_backlog": one(
                "SELECT COUNT(*) FROM jobs_job WHERE status IN ('queued', 'running') "
                "AND client = ?",
                ABUSER,
            ),
            "abuser_running": one(
                "SELECT COUNT(*) FROM jobs_job WHERE status = 'running' AND client = ?", ABUSER
            ),
            "job_rows": one("SELECT COUNT(*) FROM jobs_job"),
            "message_rows": one("SELECT COUNT(*) FROM kombu_message"),
            "database_bytes": (one("PRAGMA page_count") - one("PRAGMA freelist_count")) * page_size,
        }


def sampler(path: str, stop: threading.Event, run: Run) -> None:
    while not stop.is_set():
        with contextlib.suppress(sqlite3.Error):
            run.samples.append(database_sample(path))
        stop.wait(SAMPLE_EVERY)


def pruner(dyno: Dyno, stop: threading.Event, run: Run) -> None:
    while not stop.wait(PRUNE_EVERY):
        done = subprocess.run(
            [sys.executable, "app/manage.py", "prune_jobs"],
            cwd=ROOT,
            env=dyno.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode == 0:
            run.prunes.append(json.loads(done.stdout.strip().splitlines()[-1]))


def normal_latencies(dyno: Dyno, ids: list[int], timeout: float = 60) -> tuple[list[float], int]:
    """Create-to-done milliseconds from the server's timestamps; and how many never finished."""
    deadline = time.monotonic() + timeout
    jobs: list[dict] = []
    while time.monotonic() < deadline:
        jobs = []
        for start in range(0, len(ids), 500):
            chunk = ",".join(map(str, ids[start : start + 500]))
            jobs += dyno.get(f"api/jobs?ids={chunk}")["jobs"]
        if all(job["status"] == "done" for job in jobs) and len(jobs) == len(ids):
            break
        time.sleep(0.5)
    latencies = [
        (
            datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
        ).total_seconds()
        * 1000
        for job in jobs
        if job["status"] == "done"
    ]
    return latencies, len(ids) - len(latencies)


def exercise(dyno: Dyno, name: str, seconds: float, abusers: int) -> Run:
    run = Run(name)
    stop, lock = threading.Event(), threading.Lock()
    database = str(dyno.workdir / "db.sqlite3")
    background = [
        threading.Thread(target=prober, args=(dyno.port, stop, run)),
        threading.Thread(target=sampler, args=(database, stop, run)),
        threading.Thread(target=pruner, args=(dyno, stop, run)),
        *(
            threading.Thread(target=abuser, args=(dyno.port, stop, run, lock))
            for _ in range(abusers)
        ),
    ]
    for thread in background:
        thread.start()
    try:
        normal_client(dyno.port, seconds, run)
    finally:
        stop.set()
        for thread in background:
            thread.join(timeout=90)
    return run


def summary(run: Run, latencies: list[float], unfinished: int) -> dict:
    peak = lambda key: max((sample[key] for sample in run.samples), default=0)  # noqa: E731
    return {
        "abuser requests": dict(run.statuses),
        "abuser jobs accepted": run.abuser_jobs,
        "abuser errors other than 429": len(run.abuser_errors),
        "peak backlog": peak("backlog"),
        "peak abuser backlog": peak("abuser_backlog"),
        "peak abuser running": peak("abuser_running"),
        "peak job rows": peak("job_rows"),
        "peak broker message rows": peak("message_rows"),
        "peak database MB": round(peak("database_bytes") / 2**20, 1),
        "samples": len(run.samples),
        "prunes": len(run.prunes),
        "pruned jobs": sum(p["jobs_by_age"] + p["jobs_by_count"] for p in run.prunes),
        "pruned messages": sum(p["messages_by_age"] + p["messages_by_count"] for p in run.prunes),
        "normal jobs": len(run.normal_ids),
        "normal errors": len(run.normal_errors),
        "normal unfinished": unfinished,
        "normal job ms p50": round(percentile(latencies, 0.5)),
        "normal job ms p99": round(percentile(latencies, 0.99)),
        "normal create ms p50": round(percentile(run.create_ms, 0.5)),
        "normal create ms p99": round(percentile(run.create_ms, 0.99)),
        "healthz ms p50": round(percentile(run.health_ms, 0.5)),
        "healthz ms p99": round(percentile(run.health_ms, 0.99)),
        "healthz ms max": round(max(run.health_ms, default=float("nan"))),
        "demo page ms p50": round(percentile(run.page_ms, 0.5)),
        "demo page ms p99": round(percentile(run.page_ms, 0.99)),
        "healthz or page failures": run.health_failures,
    }


def test_an_abusive_client_is_throttled_and_a_normal_one_still_served(tmp_path, figures):
    dyno = Dyno(tmp_path, env_extra=ENV)
    dyno.migrate()
    dyno.start()
    dyno.wait_healthy()
    try:
        quiet = exercise(dyno, "quiet", QUIET_SECONDS, abusers=0)
        quiet_latencies, quiet_unfinished = normal_latencies(dyno, quiet.normal_ids)
        abuse = exercise(dyno, "abuse", ABUSE_SECONDS, abusers=ABUSERS)
        # The normal client's last jobs may wait a moment; the abuser's backlog
        # is left to the dyno's end.
        abuse_latencies, abuse_unfinished = normal_latencies(dyno, abuse.normal_ids)
        log = dyno.log_tail(2000)
    finally:
        dyno.stop()

    results = {
        "quiet": summary(quiet, quiet_latencies, quiet_unfinished),
        "abuse": summary(abuse, abuse_latencies, abuse_unfinished),
    }
    q, a = results["quiet"], results["abuse"]
    ratio = a["normal job ms p99"] / q["normal job ms p99"] if q["normal job ms p99"] else 0
    figures["abuse"] = [
        f"{ABUSE_SECONDS:.0f} s, {ABUSERS} connections of maximal batches ({MAX_BATCH} jobs)",
        f"abuser: {a['abuser requests']} ({a['abuser jobs accepted']} jobs accepted), "
        f"{a['abuser errors other than 429']} errors other than 429",
        f"peak backlog {a['peak backlog']} of {MAX_BACKLOG}; abuser's {a['peak abuser backlog']} "
        f"of {CLIENT_MAX_BACKLOG}, running at most {a['peak abuser running']} at once",
        f"peak rows: jobs {a['peak job rows']} of {MAX_BACKLOG + int(ENV['JOBS_KEEP_FINISHED'])}, "
        f"broker messages {a['peak broker message rows']}; database "
        f"{a['peak database MB']} MB of {BUDGET_BYTES // 2**20}; {a['prunes']} prunes took "
        f"{a['pruned jobs']} jobs and {a['pruned messages']} messages",
        f"normal job ms p50/p99: quiet {q['normal job ms p50']}/{q['normal job ms p99']}, "
        f"abuse {a['normal job ms p50']}/{a['normal job ms p99']} ({ratio:.2f}x p99)",
        f"normal create ms p50/p99: quiet {q['normal create ms p50']}/{q['normal create ms p99']}, "
        f"abuse {a['normal create ms p50']}/{a['normal create ms p99']}",
        f"/healthz ms p50/p99/max: quiet {q['healthz ms p50']}/{q['healthz ms p99']}/"
        f"{q['healthz ms max']}, abuse {a['healthz ms p50']}/{a['healthz ms p99']}/"
        f"{a['healthz ms max']}; demo page ms p50/p99: quiet {q['demo page ms p50']}/"
        f"{q['demo page ms p99']}, abuse {a['demo page ms p50']}/{a['demo page ms p99']}; "
        f"non-200: {q['healthz or page failures']} and {a['healthz or page failures']}",
        f"normal jobs: quiet {q['normal jobs']}, abuse {a['normal jobs']}; errors "
        f"{q['normal errors']} and {a['normal errors']}; unfinished {q['normal unfinished']} "
        f"and {a['normal unfinished']}",
    ]
    figures["abuse (raw)"] = json.dumps(results)

    assert abuse.abuser_errors == [], abuse.abuser_errors[:5]
    assert abuse.statuses[429] > 0 and abuse.statuses[202] > 0, abuse.statuses
    for run in (quiet, abuse):
        assert run.samples, "the database was never sampled"
        assert run.normal_errors == [], run.normal_errors[:5]
        for sample in run.samples:
            assert sample["backlog"] <= MAX_BACKLOG, sample
            assert sample["abuser_backlog"] <= CLIENT_MAX_BACKLOG, sample
            assert sample["job_rows"] <= MAX_BACKLOG + int(ENV["JOBS_KEEP_FINISHED"]), sample
            assert sample["database_bytes"] <= BUDGET_BYTES, sample
            kept = int(ENV["BROKER_KEEP_DELIVERED"])
            assert sample["message_rows"] <= MAX_BACKLOG + kept, sample
    assert quiet_unfinished == 0 and abuse_unfinished == 0, log[-3000:]
    assert a["peak abuser running"] <= 1  # JOBS_CLIENT_MAX_RUNNING: children - 1
