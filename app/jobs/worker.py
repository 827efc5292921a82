"""What runs in the Celery worker's main process besides consuming.

- A heartbeat row every few seconds, so /healthz can count live workers on
  any broker without Celery's remote-control ping (the database broker cannot
  broadcast; on Redis a ping costs connections a small plan cannot spare).
  The first beat comes from the worker's event loop, which only turns once
  Celery has checked its pool: Celery exits ("Could not start worker
  processes") if a pool child is gone before that, so a worker that beat any
  earlier could be counted healthy and then fall over.
- Pool children keep their database connection across jobs (see
  CELERY_DB_REUSE_MAX in the settings), closing it when it failed or aged.
- Pool children ignore SIGTERM. Platforms (and honcho) send SIGTERM to every
  process of the dyno at once; a child that died of it would cut its job short
  instead of letting the main process run Celery's warm shutdown, which waits
  for running jobs and then stops the children itself.
- Jobs whose message may be lost are queued again: at start (also from the
  event loop, so no database work delays the pool check), the jobs that
  were running when the previous dyno stopped; then, every half of
  JOBS_REQUEUE_AFTER_SECONDS (and at start), jobs untouched for that long that
  are still queued, or running with their lease run out. A dyno killed
  without grace loses the messages its worker had fetched but not
  acknowledged (the SQL transport hides a fetched message for good; Redis
  gives it back only after its visibility timeout). Of the stale queued jobs,
  only as many are sent again as there are queued jobs beyond the messages
  that can carry them (waiting in the broker, or fetched by this worker):
  while a backlog drains, an old queued job is most likely still in it.
  Duplicates are harmless anyway: the task claims jobs with a fenced
  conditional update and drops deliveries of finished jobs.
"""

import logging
import os
import signal
from datetime import timedelta

import billiard.pool
from celery import bootsteps
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

REQUEUE_BATCH = 500


class Heartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_refs = []
        self.started_at = timezone.now()

    def start(self, worker):
        # With the event loop, worker.timer is the loop's own timer: nothing
        # here runs before the loop does.
        self.timer_refs = [
            worker.timer.call_after(0, self.beat, (worker,), priority=10),
            worker.timer.call_after(0, self.sweep, (True,), priority=5),
            worker.timer.call_repeatedly(
                settings.WORKER_HEARTBEAT_SECONDS, self.beat, (worker,), priority=10
            ),
            worker.timer.call_repeatedly(
                settings.JOBS_REQUEUE_AFTER_SECONDS / 2, self.sweep, priority=5
            ),
        ]

    def stop(self, worker):
        from .models import WorkerHeartbeat

        for ref in self.timer_refs:
            ref.cancel()
        self.timer_refs = []
        try:
            WorkerHeartbeat.objects.filter(hostname=worker.hostname).delete()
        except Exception:  # a dying database must not block shutdown
            log.warning("could not remove the heartbeat of %s", worker.hostname)

    def sweep(self, at_start: bool = False):
        try:
            requeue_stale_jobs(at_start=at_start)
        except Exception:
            close_old_connections()
            log.exception("requeue sweep failed")

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


def broker_backlog() -> int | None:
    """Messages waiting in the broker's queue, or None when it cannot tell."""
    from doubleboiler.celery import app, waiting_messages

    try:
        # From the process's pool: a new connection each sweep is one more than the
        # connection budget counted.
        with app.connection_or_acquire() as connection:
            return waiting_messages(connection)
    except Exception as exc:
        log.warning("could not count the broker's waiting messages: %s", exc)
        return None


def fetched_not_started() -> int:
    """Messages this worker has fetched whose job has not started yet."""
    from celery.worker import state

    return len(set(state.reserved_requests) - set(state.active_requests))


def queued_without_message(queued: int) -> int:
    """How many of `queued` jobs have no message left to carry them.

    A queued job's message waits in the broker or was fetched by the worker.
    Exact for one worker; with several (split mode) the others' fetched
    messages count as lost, which only costs duplicate deliveries.
    """
    if not queued:
        return 0
    backlog = broker_backlog()
    if backlog is None:
        return queued  # a lost job is worse than a duplicate delivery
    return max(0, queued - backlog - fetched_not_started())


def requeue_stale_jobs(at_start: bool = False) -> int:
    """Send a fresh message for each job that may have lost its own; bounded."""
    from .models import Job
    from .tasks import run_job

    now = timezone.now()
    untouched = Q(updated_at__lt=now - timedelta(seconds=settings.JOBS_REQUEUE_AFTER_SECONDS))
    lost_lease = untouched & Q(status=Job.Status.RUNNING, lease_expires_at__lt=now)
    if at_start:
        lost_lease |= Q(status=Job.Status.RUNNING)
    ids = list(
        Job.objects.filter(lost_lease).order_by("id").values_list("id", flat=True)[:REQUEUE_BATCH]
    )
    # Lost messages belong to the oldest queued jobs: the broker hands
    # messages out oldest first, so the ones still waiting are the newest.
    # The broker is only asked when some queued job is stale at all.
    # Parked (deferred) jobs have no message by design: not counted here.
    carried = Q(status=Job.Status.QUEUED, deferred=False)
    stale_queued = Job.objects.filter(untouched & carried).order_by("id")
    room = REQUEUE_BATCH - len(ids)
    if room > 0 and stale_queued.exists():
        missing = queued_without_message(Job.objects.filter(carried).count())
        ids += stale_queued.values_list("id", flat=True)[: min(room, missing)]
    # Touching updated_at keeps a job from being requeued again for a while.
    Job.objects.filter(pk__in=ids).update(updated_at=now)
    for job_id in ids:
        run_job.delay(job_id)
    released = release_stale_deferred(untouched, now)
    if ids or released:
        log.info(
            "requeued %d jobs that may have lost their message, released %d parked ones",
            len(ids),
            released,
        )
    return len(ids) + released


def release_stale_deferred(untouched: Q, now) -> int:
    """Parked jobs whose client has a free slot but whose release never came.

    A job finishing releases the next parked job of its client; a worker lost
    between the two (or a dyno killed) would leave the rest parked for good.
    """
    from .models import Job
    from .tasks import release_deferred, running_jobs

    parked = Job.objects.filter(untouched, status=Job.Status.QUEUED, deferred=True)
    released = 0
    for client in parked.values_list("client", flat=True).distinct()[:REQUEUE_BATCH]:
        free = settings.JOBS_CLIENT_MAX_RUNNING - running_jobs(client, now)
        for _ in range(max(0, free)):
            if release_deferred(client) is None:
                break
            released += 1
    return released


# How long a pool child that has run its last job waits for the main process to read
# its results before it exits (billiard.pool.Worker._ensure_messages_consumed polls
# every 0.1 s, 300 times by default). In a warm shutdown the main process stops reading
# once no job is pending, and a job it dropped as not yet started (AsynPool.flush, a
# message that arrived as the shutdown began) may already be running in a child: that
# result is never read, and the child waited the full 30 s, past the platform's grace
# (bin/dyno: 25 s; Heroku sends SIGKILL 30 s after SIGTERM,
# https://devcenter.heroku.com/articles/dynos#graceful-shutdown-with-sigterm), so the
# dyno did not stop gracefully (tests/faults/test_restarts.py: 1 of 20 shutdowns soon
# after a restart that followed a SIGKILL; the stacks bin/dyno asks for showed both
# children in that loop). The dropped job's message is not acknowledged: it comes
# again and finds its job finished.
RESULTS_READ_WAIT_SECONDS = 3
# A child's database connection is kept across its jobs this long (without a
# connection pool; with one, Django requires CONN_MAX_AGE 0, and the pool keeps it).
CHILD_CONN_MAX_AGE_SECONDS = 300


@worker_process_init.connect
def prepare_pool_child(**kwargs):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    billiard.pool.GUARANTEE_MESSAGE_CONSUMPTION_RETRY_LIMIT = int(
        RESULTS_READ_WAIT_SECONDS / billiard.pool.GUARANTEE_MESSAGE_CONSUMPTION_RETRY_INTERVAL
    )
    keep_connections_across_jobs()


def keep_connections_across_jobs() -> None:
    # Only the children: under gevent the web's connections stay per request
    # (doubleboiler/settings.py), and the main process's per use.
    for connection in connections.all():
        if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
            connection.settings_dict["CONN_MAX_AGE"] = CHILD_CONN_MAX_AGE_SECONDS


@task_prerun.connect
@task_postrun.connect
def close_unusable_connections(sender=None, **kwargs):
    # What Django does around each request; Celery's own close after every task
    # is off (CELERY_DB_REUSE_MAX in the settings). Not for a task run eagerly, in
    # its caller's process and maybe its transaction (as the fixup skips them).
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
