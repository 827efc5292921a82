"""The worker's side of a tick, and the demo task."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.db.models import Count, F
from django.utils import timezone

from .claims import dyno_name
from .models import Tick

log = logging.getLogger(__name__)

RESULT_MAX_CHARS = 2000


def start(tick_id: int) -> Tick | None:
    """Take the run: only a tick still `dispatched` moves to `running` (the fence)."""
    now = timezone.now()
    taken = Tick.objects.filter(pk=tick_id, outcome=Tick.Outcome.DISPATCHED).update(
        outcome=Tick.Outcome.RUNNING,
        runs=F("runs") + 1,
        run_by=dyno_name(),
        run_pid=os.getpid(),
        started_at=now,
        lease_expires_at=now + timedelta(seconds=settings.SCHEDULE_RUN_LEASE_SECONDS),
    )
    if not taken:
        Tick.objects.filter(pk=tick_id).update(duplicate_deliveries=F("duplicate_deliveries") + 1)
        return None
    return Tick.objects.get(pk=tick_id)


def as_json(value) -> object:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return {"repr": repr(value)[:RESULT_MAX_CHARS]}
    if len(text) > RESULT_MAX_CHARS:
        return {"truncated": text[:RESULT_MAX_CHARS]}
    return value


def run(tick_id: int) -> str:
    """Run the tick's task here, once; record the outcome under the run's fence."""
    tick = start(tick_id)
    if tick is None:
        log.info("tick %s: already taken by another delivery; nothing to do", tick_id)
        return "duplicate"
    log.info(
        "tick %s: %s (%s) due %s started, run %s",
        tick.pk,
        tick.name,
        tick.task,
        tick.due_at.isoformat(),
        tick.runs,
    )
    task = current_app.tasks.get(tick.task)
    fields: dict = {}
    if task is None:
        fields = {"outcome": Tick.Outcome.FAILED, "error": f"no Celery task named {tick.task}"}
    else:
        try:
            value = task(*tick.arguments.get("args", []), **tick.arguments.get("kwargs", {}))
            fields = {"outcome": Tick.Outcome.OK, "result": as_json(value)}
        except Exception as exc:
            log.exception("tick %s: %s failed", tick.pk, tick.name)
            fields = {"outcome": Tick.Outcome.FAILED, "error": f"{type(exc).__name__}: {exc}"}
    recorded = Tick.objects.filter(pk=tick.pk, runs=tick.runs, outcome=Tick.Outcome.RUNNING).update(
        finished_at=timezone.now(), lease_expires_at=None, **fields
    )
    outcome = fields["outcome"] if recorded else "superseded"
    log.info(
        "tick %s: %s due %s finished: %s", tick.pk, tick.name, tick.due_at.isoformat(), outcome
    )
    return str(outcome)


@shared_task(name="scheduling.run_tick", ignore_result=True, acks_late=True)
def run_tick(tick_id: int) -> str:
    return run(tick_id)


@shared_task(name="scheduling.demo")
def demo() -> dict:
    """A short periodic task for the demo: count the jobs by state."""
    from jobs.models import Job

    started = time.perf_counter()
    time.sleep(settings.SCHEDULE_DEMO_WORK_MS / 1000)
    counts = dict(Job.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {"jobs": counts, "ms": round((time.perf_counter() - started) * 1000, 1)}
