"""Admission control for job creation: a batch is admitted whole, or refused.

Checked in this order, each against the database (the one source of truth for
every Gunicorn worker and every dyno):

1. the client's rate: accepted job-creating requests in this minute
   (JOBS_CLIENT_CREATES_PER_MINUTE);
2. the client's backlog: its queued + running jobs, as a count
   (JOBS_CLIENT_MAX_BACKLOG) and as estimated work (JOBS_CLIENT_MAX_BACKLOG_SECONDS);
3. the whole backlog, the same way (JOBS_MAX_BACKLOG, JOBS_MAX_BACKLOG_SECONDS);
4. the job table's row bound (JOBS_MAX_BACKLOG + JOBS_KEEP_FINISHED): when it
   is reached, finished jobs are pruned first (jobs.retention), so the bound
   holds whether or not a scheduler runs the pruning.

The checks run inside the transaction that inserts the jobs (they read both
backlogs in one query, and the row bound from the id range unless that is too
close to call), under a lock every creator takes (PostgreSQL: a
transaction-level advisory lock; SQLite: the write lock its IMMEDIATE
transactions take at BEGIN). Two concurrent batches therefore cannot both
squeeze under a bound. When the last check this process made found any bound
at least half used, they also run once before, without a transaction (reads
only), so that a refused request costs no write lock; far from the bounds a
refusal is unlikely, and the second pass would double the cost of every
accepted request (docs/benchmarks.md, the profile).

Work is estimated in seconds of the dyno's Celery children: a job's I/O wait,
its hash rounds at the measured rate, and the per-job cost of the pipeline
(docs/benchmarks.md: about 100 empty jobs/s on 2 children), divided by the
number of children.

A refusal is remembered by the Gunicorn worker until its Retry-After: a
client that hammers without waiting is answered without a query at all.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from . import locks, retention
from .models import CreationWindow, Job

# Measured on the development machine (docs/reliability.md): one sha256 round
# of the job's loop, and the pipeline's cost per job in child-seconds.
HASH_ROUND_SECONDS = 0.4e-6
JOB_OVERHEAD_SECONDS = 0.02
# A backlog refusal asks the client to come back when the excess has drained,
# within these bounds.
RETRY_AFTER_RANGE = (1, 30)
PRUNE_AT_MOST_EVERY_SECONDS = 5.0
REMEMBERED_REFUSALS = 10_000
# Check before the transaction too once the last check saw a bound this full.
PRECHECK_FROM_FILL = 0.5


@dataclass
class Refusal:
    reason: str
    message: str
    retry_after: int
    status: int = 429
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "error": self.message,
            "reason": self.reason,
            "retry_after": self.retry_after,
            **self.details,
        }


def job_work_seconds(count: int, params: dict) -> float:
    """Child-seconds `count` jobs of these parameters take, estimated."""
    io_wait_ms = params.get("io_wait_ms", Job._meta.get_field("io_wait_ms").default)
    cpu_iterations = params.get("cpu_iterations", Job._meta.get_field("cpu_iterations").default)
    each = io_wait_ms / 1000 + cpu_iterations * HASH_ROUND_SECONDS + JOB_OVERHEAD_SECONDS
    return count * each


def drain_seconds(child_seconds: float) -> float:
    return child_seconds / max(1, settings.CELERY_WORKER_CONCURRENCY)


def _drain(count: int | None, io_ms: int | None, cpu: int | None) -> tuple[int, float]:
    count = count or 0
    work = (io_ms or 0) / 1000 + (cpu or 0) * HASH_ROUND_SECONDS
    return count, drain_seconds(work + count * JOB_OVERHEAD_SECONDS)


def backlogs(client: str) -> tuple[tuple[int, float], tuple[int, float]]:
    """Queued + running jobs of `client`, and of everyone, with their estimated drain
    times: one pass over those jobs."""
    mine = Q(client=client)
    totals = Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).aggregate(
        n=Count("id"),
        io=Sum("io_wait_ms"),
        cpu=Sum("cpu_iterations"),
        my_n=Count("id", filter=mine),
        my_io=Sum("io_wait_ms", filter=mine),
        my_cpu=Sum("cpu_iterations", filter=mine),
    )
    return (
        _drain(totals["my_n"], totals["my_io"], totals["my_cpu"]),
        _drain(totals["n"], totals["io"], totals["cpu"]),
    )


def window_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def retry_after(seconds: float) -> int:
    low, high = RETRY_AFTER_RANGE
    return max(low, min(high, math.ceil(seconds)))


class Fill:
    """The largest share of any bound the last check in this process saw used (0 to 1+)."""

    last = 1.0  # cautious until the first check

    @classmethod
    def saw(cls, used: float, bound: float) -> None:
        cls.last = max(cls.last, used / bound if bound > 0 else 1.0)


def check(client: str, count: int, params: dict, now: datetime) -> Refusal | None:
    limit = settings.JOBS_CLIENT_CREATES_PER_MINUTE
    start = window_start(now)
    made = (
        CreationWindow.objects.filter(client=client, window_start=start)
        .values_list("requests", flat=True)
        .first()
    ) or 0
    Fill.last = 0.0
    Fill.saw(made + 1, limit)
    if made >= limit:
        wait = (start + timedelta(minutes=1) - now).total_seconds()
        return Refusal(
            "rate_limited",
            f"too many job-creating requests from your address: {limit} a minute are "
            "allowed; try again after Retry-After seconds",
            max(1, math.ceil(wait)),
            details={"limit": limit, "window_seconds": 60},
        )
    new_work = drain_seconds(job_work_seconds(count, params))
    client_backlog, whole_backlog = backlogs(client)
    for scope, who, (jobs, seconds), max_jobs, max_seconds in (
        ("client_backlog_full", client, client_backlog, settings.JOBS_CLIENT_MAX_BACKLOG,
         settings.JOBS_CLIENT_MAX_BACKLOG_SECONDS),
        ("backlog_full", None, whole_backlog, settings.JOBS_MAX_BACKLOG,
         settings.JOBS_MAX_BACKLOG_SECONDS),
    ):  # fmt: skip
        Fill.saw(jobs + count, max_jobs)
        Fill.saw(seconds + new_work, max_seconds)
        if jobs + count <= max_jobs and seconds + new_work <= max_seconds:
            continue
        whose = "your address's" if who is not None else "the server's"
        excess_jobs = jobs + count - max_jobs
        excess_seconds = max(
            seconds + new_work - max_seconds, excess_jobs * (seconds / jobs if jobs else 0)
        )
        return Refusal(
            scope,
            f"{whose} queue is full: {jobs} jobs (about {seconds:.0f} s of work) wait or run, "
            f"and this request adds {count} (about {new_work:.0f} s); the bound is "
            f"{max_jobs} jobs and {max_seconds} s of work. Try again after Retry-After "
            "seconds, or send fewer jobs",
            retry_after(excess_seconds),
            details={
                "backlog_jobs": jobs,
                "backlog_seconds": round(seconds, 1),
                "max_jobs": max_jobs,
                "max_seconds": max_seconds,
            },
        )
    return None


def batch_never_fits(count: int, params: dict) -> Refusal | None:
    """A batch larger than a client's whole backlog bound: waiting cannot help."""
    work = drain_seconds(job_work_seconds(count, params))
    max_jobs = min(settings.JOBS_CLIENT_MAX_BACKLOG, settings.JOBS_MAX_BACKLOG)
    max_seconds = min(settings.JOBS_CLIENT_MAX_BACKLOG_SECONDS, settings.JOBS_MAX_BACKLOG_SECONDS)
    if count <= max_jobs and work <= max_seconds:
        return None
    return Refusal(
        "batch_too_large",
        f"this request is about {work:.0f} s of work in {count} jobs, more than one client "
        f"may queue at all ({max_jobs} jobs, {max_seconds} s): send fewer or smaller jobs",
        0,
        status=400,
        details={"max_jobs": max_jobs, "max_seconds": max_seconds},
    )


_last_prune = [float("-inf")]


def rows_at_most() -> int:
    """An upper bound of the job table's rows from its id range: two index lookups.

    Ids only grow and rows are only deleted, so the rows are at most the ids from
    the lowest to the highest; counting them all scans the table. Two queries:
    SQLite answers a lone MIN or MAX from the index, but scans the whole table
    for both in one query (https://www.sqlite.org/optoverview.html#minmax).
    """
    low = Job.objects.aggregate(low=Min("id"))["low"]
    if low is None:
        return 0
    return Job.objects.aggregate(high=Max("id"))["high"] - low + 1


def make_room(count: int) -> Refusal | None:
    """Keep the job table within its row bound; prune first when it is full."""
    bound = settings.JOBS_MAX_BACKLOG + settings.JOBS_KEEP_FINISHED
    rows = rows_at_most()
    Fill.saw(rows + count, bound)
    if rows + count <= bound or Job.objects.count() + count <= bound:
        return None
    if time.monotonic() - _last_prune[0] >= PRUNE_AT_MOST_EVERY_SECONDS:
        _last_prune[0] = time.monotonic()
        # Down to 90% of the finished jobs kept, so the next batch does not prune again.
        retention.prune_finished_jobs(
            timezone.now(),
            settings.JOBS_KEEP_FINISHED * 9 // 10,
            settings.JOBS_KEEP_FINISHED_SECONDS,
        )
        retention.prune_broker_messages(
            settings.BROKER_KEEP_DELIVERED, settings.BROKER_KEEP_DELIVERED_SECONDS
        )
        if Job.objects.count() + count <= bound:
            return None
    return Refusal(
        "storage_full",
        f"the job table holds its bound of {bound} rows; finished jobs are being pruned. "
        "Try again after Retry-After seconds",
        retry_after(PRUNE_AT_MOST_EVERY_SECONDS),
        details={"max_rows": bound},
    )


class RefusalMemory:
    """Refusals this process gave, until their Retry-After (a per-process shortcut)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, tuple[float, Refusal]] = {}

    def get(self, client: str) -> Refusal | None:
        with self._lock:
            entry = self._until.get(client)
            if entry is None:
                return None
            until, refusal = entry
            if time.monotonic() >= until:
                del self._until[client]
                return None
        left = max(1, math.ceil(until - time.monotonic()))
        return Refusal(refusal.reason, refusal.message, left, refusal.status, refusal.details)

    def remember(self, client: str, refusal: Refusal) -> None:
        if refusal.status != 429:
            return
        with self._lock:
            if len(self._until) >= REMEMBERED_REFUSALS:
                self._until.clear()
            self._until[client] = (time.monotonic() + refusal.retry_after, refusal)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


refusals = RefusalMemory()


def admit(client: str, count: int, params: dict, web_pid: int) -> list[Job] | Refusal:
    """Create `count` jobs for `client`, or say why not; never a part of them."""
    remembered = refusals.get(client)
    if remembered is not None:
        # Not remembered again: each hit would push the end of the wait out, and
        # clients retrying in turn would then be refused for ever.
        return remembered
    refusal = batch_never_fits(count, params)
    if refusal is None and Fill.last >= PRECHECK_FROM_FILL:
        refusal = check(client, count, params, timezone.now()) or make_room(count)
    if refusal is not None:
        refusals.remember(client, refusal)
        return refusal
    with transaction.atomic():
        locks.lock_admission()
        now = timezone.now()
        refusal = check(client, count, params, now) or make_room(count)
        if refusal is not None:
            refusals.remember(client, refusal)
            return refusal
        jobs = Job.objects.bulk_create(
            [
                Job(client=client, web_pid=web_pid, created_at=now, updated_at=now, **params)
                for _ in range(count)
            ]
        )
        start = window_start(now)
        counted = CreationWindow.objects.filter(client=client, window_start=start).update(
            requests=F("requests") + 1
        )
        if not counted:
            CreationWindow.objects.create(client=client, window_start=start, requests=1)
    return jobs
