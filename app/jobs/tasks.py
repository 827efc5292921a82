"""The job task: claim, work, complete; safe to deliver more than once."""

import hashlib
import logging
import os
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from .models import Job

log = logging.getLogger(__name__)

FINISHED = (Job.Status.DONE, Job.Status.FAILED)


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


def claim(job_id: int) -> tuple[Job | None, float]:
    """Take the job for this delivery.

    Returns (job, 0) when claimed, (None, 0) when it is already finished or
    gone, and (None, seconds) when another delivery holds a live lease on it.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in FINISHED:
        return None, 0.0
    now = timezone.now()
    lease = now + timedelta(seconds=job.io_wait_ms / 1000 + settings.JOBS_LEASE_MARGIN_SECONDS)
    claimable = Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, lease_expires_at__lt=now)
    claimed = Job.objects.filter(claimable, pk=job_id).update(
        status=Job.Status.RUNNING,
        attempts=F("attempts") + 1,
        worker_pid=os.getpid(),
        started_at=now,
        lease_expires_at=lease,
        updated_at=now,
    )
    if claimed:
        job.refresh_from_db()
        return job, 0.0
    job.refresh_from_db()
    if job.status in FINISHED:
        return None, 0.0
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
        Job.objects.filter(pk=job_id).update(duplicate_deliveries=F("duplicate_deliveries") + 1)
        return "already finished"
    if job is None:
        # Another delivery is running it; look again once its lease runs out.
        raise self.retry(countdown=wait)
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
