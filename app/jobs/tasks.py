"""The job task: claim, work, complete; safe to deliver more than once."""

import hashlib
import logging
import os
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from . import locks
from .models import Job

log = logging.getLogger(__name__)

FINISHED = (Job.Status.DONE, Job.Status.FAILED)
CLAIM_TRIES = 3


def simulated_work(io_wait_ms: int, cpu_iterations: int) -> dict:
    """Wait like an upstream call, then hash for a while like a small CPU step."""
    started = time.perf_counter()
    time.sleep(io_wait_ms / 1000)
    waited = time.perf_counter()
    digest = b"double-boiler"
    for _ in range(cpu_iterations):
        digest = hashlib.sha256(digest).digest()
    finished = time.perf_counter()
    return {
        "digest": digest.hex()[:16],
        "io_ms": round((waited - started) * 1000, 1),
        "cpu_ms": round((finished - waited) * 1000, 1),
    }


def running_jobs(client: str, now) -> int:
    """Jobs of `client` running under a live lease (an expired one ran on a lost worker)."""
    return Job.objects.filter(
        client=client, status=Job.Status.RUNNING, lease_expires_at__gte=now
    ).count()


def busy_clients(now) -> set[str]:
    """Clients running as many jobs as JOBS_CLIENT_MAX_RUNNING allows."""
    return set(
        Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__gte=now)
        .values("client")
        .annotate(running=Count("id"))
        .filter(running__gte=settings.JOBS_CLIENT_MAX_RUNNING)
        .values_list("client", flat=True)
    )


TAKEN, BUSY, GONE = "taken", "busy", "gone"


def take(job: Job, now) -> str:
    """The fenced claim (queued, or running with its lease run out), within the
    client's bound on running jobs.

    The count and the claim are one step under a lock per client, so two
    children taking the same client's jobs at once cannot both pass the bound.
    The claim also requires the attempts `job` was read with: then this
    delivery knows the row it claimed without reading it again, and a claim
    by another delivery since that read makes this one GONE (it looks again).
    """
    lease = now + timedelta(seconds=job.io_wait_ms / 1000 + settings.JOBS_LEASE_MARGIN_SECONDS)
    claimable = Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, lease_expires_at__lt=now)
    claim = {
        "status": Job.Status.RUNNING,
        "attempts": job.attempts + 1,
        "worker_pid": os.getpid(),
        "started_at": now,
        "lease_expires_at": lease,
        "deferred": False,
        "updated_at": now,
    }
    with transaction.atomic():
        if job.client:
            locks.lock_client_slots(job.client)
            if running_jobs(job.client, now) >= settings.JOBS_CLIENT_MAX_RUNNING:
                return BUSY
        claimed = Job.objects.filter(claimable, pk=job.pk, attempts=job.attempts).update(**claim)
    if not claimed:
        return GONE
    for name, value in claim.items():
        setattr(job, name, value)
    return TAKEN


def defer(job: Job) -> bool | None:
    """Park a queued job of a busy client without a message.

    True when parked, False when its client is no longer busy (claim again),
    None when the job is not queued any more. The check after the update
    closes the race with a job of the same client finishing meanwhile: either
    that job's release_deferred() sees this job parked, or this check sees the
    client below its bound.
    """
    if not Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(deferred=True):
        return None
    if running_jobs(job.client, timezone.now()) < settings.JOBS_CLIENT_MAX_RUNNING:
        Job.objects.filter(pk=job.pk, deferred=True).update(deferred=False)
        return False
    return True


def release_deferred(client: str) -> int | None:
    """Give the oldest parked job of `client` a message again (a slot of it freed up)."""
    job_id = (
        Job.objects.filter(client=client, status=Job.Status.QUEUED, deferred=True)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if job_id is None or not Job.objects.filter(pk=job_id, deferred=True).update(deferred=False):
        return None
    run_job.delay(job_id)
    return job_id


def claim_other(exclude: int, busy: set[str], now) -> Job | None:
    """The oldest queued job of a client below its bound: fair dispatch.

    Messages are first in, first out, so a client that queued a thousand jobs
    has a thousand messages ahead of everyone else's. Each of them, delivered
    while its client is at its bound, runs the oldest job of another client
    instead (that job's own message, later, finds it finished).
    """
    candidates = (
        Job.objects.filter(status=Job.Status.QUEUED)
        .exclude(client__in=busy)
        .exclude(pk=exclude)
        .order_by("id")[:CLAIM_TRIES]
    )
    for candidate in candidates:
        if take(candidate, now) == TAKEN:
            return candidate
    return None


def claim(job_id: int) -> tuple[Job | None, float]:
    """Take a job for this delivery: its own, or another client's if its client is busy.

    Returns (job, 0) when one was claimed, (None, 0) when there is nothing to
    do (the job is finished or gone, or parked until its client has a free
    slot), and (None, seconds) when another delivery holds a live lease on it.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in FINISHED:
        return None, 0.0
    for _ in range(CLAIM_TRIES):
        now = timezone.now()
        outcome = take(job, now)
        if outcome == TAKEN:
            return job, 0.0
        if outcome == GONE:
            break
        # Its client runs as many jobs as it may: park this one, run someone else's.
        parked = defer(job)
        if parked is None:
            break  # running or finished meanwhile (another delivery): see below
        if not parked:
            continue  # a slot just freed up: try again
        return claim_other(job.pk, busy_clients(now), now), 0.0
    job.refresh_from_db()
    if job.status in FINISHED:
        return None, 0.0
    if job.status == Job.Status.QUEUED:
        return None, 0.0  # parked, or claimed and given back: its own message comes
    now = timezone.now()
    remaining = (job.lease_expires_at - now).total_seconds() if job.lease_expires_at else 1.0
    return None, max(remaining, 1.0)


def finish(job: Job, **fields) -> bool:
    """Record the outcome only if this delivery's claim still holds (a fence)."""
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
            finished_at=now, updated_at=now, lease_expires_at=None, **fields
        )
    )


@shared_task(bind=True, name="jobs.run_job", max_retries=None)
def run_job(self, job_id: int) -> str:
    job, wait = claim(job_id)
    if job is None and wait == 0:
        own = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        if own == Job.Status.QUEUED:
            return "deferred"
        Job.objects.filter(pk=job_id).update(duplicate_deliveries=F("duplicate_deliveries") + 1)
        return "already finished"
    if job is None:
        # Another delivery is running it; look again once its lease runs out.
        raise self.retry(countdown=wait)
    try:
        return run_claimed(job)
    finally:
        try:
            release_deferred(job.client)
        except Exception:
            log.exception("job %s: could not release a parked job of its client", job.pk)


def run_claimed(job: Job) -> str:
    try:
        result = simulated_work(job.io_wait_ms, job.cpu_iterations)
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        finish(job, status=Job.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    if not finish(job, status=Job.Status.DONE, result=result):
        # Our lease ran out and another delivery took over: it will complete.
        log.warning("job %s: claim %s superseded, result dropped", job.pk, job.attempts)
        return "superseded"
    return "done"
