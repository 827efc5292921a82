"""What runs in the Celery worker's main process besides consuming.

- A heartbeat row every few seconds, so /healthz can count live workers even
  on the database broker, which cannot broadcast Celery's remote-control ping.
- Pool children ignore SIGTERM. Platforms (and honcho) send SIGTERM to every
  process of the dyno at once; a child that died of it would cut its job short
  instead of letting the main process run Celery's warm shutdown, which waits
  for running jobs and then stops the children itself.
- On start, every job not yet finished is queued again. A dyno restart can
  lose messages that a worker had fetched but not acknowledged (the SQL
  transport hides a fetched message for good; Redis only after its visibility
  timeout). Duplicates are harmless: the task claims jobs with a fenced
  conditional update and drops deliveries of finished jobs.
"""

import logging
import os
import signal

from celery import bootsteps
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.started_at = timezone.now()

    def start(self, worker):
        self.beat(worker)
        self.timer_ref = worker.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_SECONDS, self.beat, (worker,), priority=10
        )

    def stop(self, worker):
        from .models import WorkerHeartbeat

        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        try:
            WorkerHeartbeat.objects.filter(hostname=worker.hostname).delete()
        except Exception:  # a dying database must not block shutdown
            log.warning("could not remove the heartbeat of %s", worker.hostname)

    def beat(self, worker):
        from .models import WorkerHeartbeat

        try:
            pool_pids = list(getattr(worker.pool, "info", {}).get("processes", []))
            WorkerHeartbeat.objects.update_or_create(
                hostname=worker.hostname,
                defaults={
                    "pid": os.getpid(),
                    "pool_pids": pool_pids,
                    "concurrency": worker.concurrency,
                    "started_at": self.started_at,
                    "last_seen": timezone.now(),
                },
            )
        except Exception:
            close_old_connections()
            log.exception("heartbeat failed")


@worker_ready.connect
def requeue_unfinished_jobs(sender=None, **kwargs):
    from .models import Job
    from .tasks import run_job

    unfinished = list(
        Job.objects.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
        .order_by("id")
        .values_list("id", flat=True)
    )
    for job_id in unfinished:
        run_job.delay(job_id)
    if unfinished:
        log.info("requeued %d unfinished jobs found at start", len(unfinished))


@worker_process_init.connect
def ignore_sigterm_in_pool_child(**kwargs):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
