"""Bounded storage: delete what the app no longer needs, and check the budget.

What grows, and what bounds it:

- Finished jobs (done, failed): kept JOBS_KEEP_FINISHED_SECONDS, and at most
  JOBS_KEEP_FINISHED of them (the newest). Queued and running jobs are bounded
  at creation (jobs.admission) and never pruned.
- Delivered broker messages, on the database broker: kombu's SQL transport
  marks a fetched message invisible and never deletes it. Kept
  BROKER_KEEP_DELIVERED_SECONDS and at most BROKER_KEEP_DELIVERED. (The
  worker's channel also prunes those older than an hour: doubleboiler.broker.)
  Waiting messages carry queued jobs, so the backlog bound bounds them.
- Rate-limit windows (CreationWindow) that have ended, and heartbeats of
  workers gone for a day (a dyno killed without grace leaves its row).
- Celery results: none. CELERY_TASK_IGNORE_RESULT is on and no result backend
  is configured; job state lives in the Job table.

`prune()` runs from the Celery task `jobs.prune` (the scheduler runs it), the
management command `prune_jobs`, and from job creation when the job table
reaches its bound (jobs.admission), so the bounds hold with no scheduler.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core import checks
from django.db import connection, transaction
from django.utils import timezone

from .models import CreationWindow, Job, WorkerHeartbeat

log = logging.getLogger(__name__)

FINISHED = (Job.Status.DONE, Job.Status.FAILED)
# Deleting in chunks keeps each transaction (SQLite's one write lock) short.
DELETE_CHUNK = 2000
HEARTBEAT_KEPT = timedelta(days=1)
# Bytes one row takes with its indexes, to check that the row bounds fit
# DATABASE_BUDGET_MB. Measured with finished default jobs and run_job
# messages: about 300 and 1,100 bytes on both SQLite and PostgreSQL
# (docs/reliability.md, "Abuse"); about three times that leaves room for dead
# rows awaiting vacuum and half-empty pages.
JOB_ROW_BYTES = 1024
MESSAGE_ROW_BYTES = 3072


def broker_message_table() -> str | None:
    """kombu's message table when the broker is this database, else None."""
    if settings.BROKER_KIND != "database":
        return None
    name = "kombu_message"
    return name if name in connection.introspection.table_names() else None


def delete_ids(queryset) -> int:
    """Delete the rows of `queryset` in short transactions; how many went."""
    deleted = 0
    while True:
        ids = list(queryset.values_list("id", flat=True)[:DELETE_CHUNK])
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = Job.objects.filter(pk__in=ids).delete()
        deleted += count
        if len(ids) < DELETE_CHUNK:
            return deleted


def prune_finished_jobs(now: datetime, keep: int, keep_seconds: int) -> dict:
    finished = Job.objects.filter(status__in=FINISHED)
    by_age = delete_ids(finished.filter(finished_at__lt=now - timedelta(seconds=keep_seconds)))
    # The newest `keep` finished jobs stay; the id is the creation order.
    boundary = list(finished.order_by("-id").values_list("id", flat=True)[keep : keep + 1])
    by_count = delete_ids(finished.filter(id__lte=boundary[0])) if boundary else 0
    return {"jobs_by_age": by_age, "jobs_by_count": by_count}


def prune_broker_messages(keep: int, keep_seconds: int) -> dict:
    table = broker_message_table()
    if table is None:
        return {"messages_by_age": 0, "messages_by_count": 0}
    quoted = connection.ops.quote_name(table)
    # kombu stamps `timestamp` with naive local time when it delivers.
    cutoff = datetime.now() - timedelta(seconds=keep_seconds)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quoted} WHERE visible = %s AND timestamp < %s",  # noqa: S608
            [False, cutoff],
        )
        by_age = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {quoted} WHERE visible = %s AND id <= ("  # noqa: S608
            f"SELECT id FROM {quoted} WHERE visible = %s ORDER BY id DESC LIMIT 1 OFFSET %s)",
            [False, False, keep],
        )
        by_count = cursor.rowcount
    return {"messages_by_age": max(by_age, 0), "messages_by_count": max(by_count, 0)}


def database_bytes() -> int:
    """Bytes the database holds in use (SQLite: pages not on the free list)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            return int(cursor.fetchone()[0])
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA page_size")
            page_size = cursor.fetchone()[0]
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute("PRAGMA freelist_count")
            free = cursor.fetchone()[0]
            return int((pages - free) * page_size)
    return 0


def row_counts() -> dict:
    counts = {"jobs": Job.objects.count()}
    table = broker_message_table()
    if table is not None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            counts["broker_messages"] = int(cursor.fetchone()[0])
    return counts


def prune(now: datetime | None = None) -> dict:
    """Delete finished jobs, delivered messages and stale rows past their bounds.

    Returns how many rows went, by reason, and the database's size against
    DATABASE_BUDGET_MB. Over the budget (more than the row bounds should
    allow: say a changed setting), finished jobs and delivered messages are
    cut to a tenth of their bounds.
    """
    now = now or timezone.now()
    counts = prune_finished_jobs(
        now, settings.JOBS_KEEP_FINISHED, settings.JOBS_KEEP_FINISHED_SECONDS
    )
    counts |= prune_broker_messages(
        settings.BROKER_KEEP_DELIVERED, settings.BROKER_KEEP_DELIVERED_SECONDS
    )
    window = now - timedelta(minutes=2)
    counts["rate_windows"], _ = CreationWindow.objects.filter(window_start__lt=window).delete()
    counts["heartbeats"], _ = WorkerHeartbeat.objects.filter(
        last_seen__lt=now - HEARTBEAT_KEPT
    ).delete()
    budget = settings.DATABASE_BUDGET_MB * 1024 * 1024
    size = database_bytes()
    if size > budget:
        log.warning("database holds %d bytes, over its budget of %d: pruning harder", size, budget)
        harder = prune_finished_jobs(
            now, settings.JOBS_KEEP_FINISHED // 10, settings.JOBS_KEEP_FINISHED_SECONDS
        )
        counts["jobs_by_count"] += harder["jobs_by_count"]
        more = prune_broker_messages(settings.BROKER_KEEP_DELIVERED // 10, 0)
        counts["messages_by_count"] += more["messages_by_count"] + more["messages_by_age"]
    counts |= {"database_bytes": size, "budget_bytes": budget, "rows": row_counts()}
    if any(
        value
        for key, value in counts.items()
        if key not in {"database_bytes", "budget_bytes", "rows"}
    ):
        log.info("pruned: %s", counts)
    return counts


@shared_task(name="jobs.prune")
def prune_task() -> dict:
    """The scheduled pruning (no arguments; returns prune()'s counts)."""
    return prune()


def worst_case_bytes() -> int:
    """Bytes the row bounds allow at most, by the measured row sizes."""
    jobs = settings.JOBS_MAX_BACKLOG + settings.JOBS_KEEP_FINISHED
    messages = settings.JOBS_MAX_BACKLOG + settings.BROKER_KEEP_DELIVERED
    return jobs * JOB_ROW_BYTES + messages * MESSAGE_ROW_BYTES


@checks.register()
def check_budget(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    budget = settings.DATABASE_BUDGET_MB * 1024 * 1024
    need = worst_case_bytes()
    if need <= budget:
        return []
    return [
        checks.Error(
            f"The row bounds allow about {need // 2**20} MB, over DATABASE_BUDGET_MB="
            f"{settings.DATABASE_BUDGET_MB}.",
            hint="Lower JOBS_MAX_BACKLOG, JOBS_KEEP_FINISHED or BROKER_KEEP_DELIVERED, "
            "or raise DATABASE_BUDGET_MB (keep it inside the database plan's storage).",
            id="jobs.E001",
        )
    ]
