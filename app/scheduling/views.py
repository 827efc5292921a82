"""GET /api/schedule: every periodic task, when it is due next, and its last runs."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import maybe_schedule
from django.conf import settings
from django.db.models import Count, Max
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import timing
from .models import SchedulerHeartbeat, Tick
from .scheduler import HEARTBEAT_SECONDS, catch_up_policy, configured_entries, live_entries

DEFAULT_RUNS = 10
MAX_RUNS = 100


def live_schedulers(now) -> list[dict]:
    fresh = now - timedelta(seconds=3 * HEARTBEAT_SECONDS)
    return [
        {
            "dyno": beat.dyno,
            "pid": beat.pid,
            "started_at": beat.started_at.isoformat(),
            "last_seen": beat.last_seen.isoformat(),
        }
        for beat in SchedulerHeartbeat.objects.filter(last_seen__gte=fresh).order_by("key")
    ]


def task_view(name: str, task: str, schedule, catch_up: bool, loaded: bool, runs: int, now):
    last_due = Tick.objects.filter(name=name).aggregate(last=Max("due_at"))["last"]
    on_time_after = now - timedelta(seconds=settings.SCHEDULE_GRACE_SECONDS)
    try:
        described = timing.describe(schedule)
        next_due = timing.next_due(schedule, max(last_due or on_time_after, on_time_after))
    except timing.UnsupportedSchedule as exc:
        described, next_due = {"kind": "unsupported", "error": str(exc)}, None
    ticks = Tick.objects.filter(name=name).order_by("-due_at")[:runs]
    outcomes = dict(
        Tick.objects.filter(name=name).values_list("outcome").annotate(n=Count("id")).order_by()
    )
    return {
        "name": name,
        "task": task,
        "schedule": described,
        "catch_up": catch_up,
        "loaded": loaded,
        "next_due_at": next_due.isoformat() if next_due else None,
        "outcomes": outcomes,
        "last_runs": [tick.as_dict() for tick in ticks],
    }


@require_GET
@never_cache
def schedule(request: HttpRequest) -> JsonResponse:
    try:
        runs = int(request.GET.get("runs", DEFAULT_RUNS))
    except ValueError:
        runs = -1
    if not 0 <= runs <= MAX_RUNS:
        return JsonResponse(
            {"error": f"runs must be a whole number from 0 to {MAX_RUNS}"}, status=400
        )
    now = timezone.now()
    policy = catch_up_policy()
    # What the beats run (the database), then settings entries no beat loaded yet.
    found = {name: (entry.task, entry.schedule, True) for name, entry in live_entries().items()}
    for name, entry in configured_entries().items():
        if name not in found:
            found[name] = (entry["task"], maybe_schedule(entry["schedule"]), False)
    tasks = [
        task_view(name, task, sched, policy.get(name, False), loaded, runs, now)
        for name, (task, sched, loaded) in sorted(found.items())
    ]
    return JsonResponse(
        {
            "now": now.isoformat(),
            "beat_in_worker": settings.SCHEDULE_BEAT,
            "schedulers": live_schedulers(now),
            "tasks": tasks,
        }
    )
