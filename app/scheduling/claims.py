"""Exactly one dispatch per tick, shared by every beat and by `dispatch_due_ticks`.

A pass over one periodic task:

1. The cursor is the newest due time any scheduler recorded for the task (the
   database is the source of truth). A task never seen starts with its
   latest due time, if that is less than `grace` seconds ago.
2. Every due time after the cursor and up to now (timing.py: the same for
   every beat) is claimed by inserting its Tick row in a transaction. The
   unique (name, due_at) constraint lets exactly one insert commit; the others
   fail and move on. The row is born `dispatched` and the winner then sends
   one message, `scheduling.run_tick(tick id)`.
3. A tick due less than `grace` seconds ago is on time. An older one fell due
   while no scheduler ran: a task with `catch_up` runs it now (flagged late);
   any other task records it as `skipped`. At most CATCH_UP_LIMIT ticks per
   task are kept per pass; older ones are only counted in the log.

Sweeps close the two gaps a dispatch can fall into:
- a message lost before any worker started it (a dyno killed between the
  claim and the send, or a worker killed with the message fetched): after
  REDISPATCH_AFTER seconds the tick is sent again, under a fence on its
  `dispatches` count so only one scheduler resends;
- a run whose worker died (its lease ran out): a `catch_up` task is sent
  again, any other is marked `interrupted`.
The worker runs a tick only if it moves it from `dispatched` to `running`
(tasks.py), so a second message for a tick never runs it twice.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from . import timing
from .models import SchedulerHeartbeat, Tick

log = logging.getLogger(__name__)


def dyno_name() -> str:
    """The platform's dyno name, else the host.

    Heroku sets DYNO, e.g. web.1 (https://devcenter.heroku.com/articles/dynos#local-environment-variables);
    so does Dokku (dokku/dokku plugins/scheduler-docker-local: DYNO="$PROC_TYPE.$CONTAINER_INDEX").
    """
    return os.environ.get("DYNO") or socket.gethostname()


@dataclass
class Periodic:
    name: str
    task: str
    schedule: object
    catch_up: bool = False
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)


@dataclass
class PassResult:
    dispatched: list[Tick] = field(default_factory=list)
    skipped: int = 0
    lost_to_others: int = 0
    not_recorded: int = 0
    next_due: datetime | None = None


Send = Callable[[Tick], None]


def last_due(name: str) -> datetime | None:
    return Tick.objects.filter(name=name).aggregate(last=Max("due_at"))["last"]


def claim(
    periodic: Periodic, due: datetime, now: datetime, outcome: str, late: bool
) -> Tick | None:
    """Insert the tick's row; None when another scheduler already has it."""
    fields = {
        "name": periodic.name,
        "task": periodic.task,
        "due_at": due,
        "arguments": {"args": list(periodic.args), "kwargs": dict(periodic.kwargs)},
        "catch_up": periodic.catch_up,
        "late": late,
        "outcome": outcome,
        "claimed_at": now,
        "claimed_by": dyno_name(),
        "claimed_pid": os.getpid(),
    }
    if outcome == Tick.Outcome.DISPATCHED:
        fields.update(dispatched_at=now, dispatches=1)
    try:
        with transaction.atomic():
            return Tick.objects.create(**fields)
    except IntegrityError:
        return None


def dispatch_due(
    periodic: Periodic,
    send: Send,
    now: datetime | None = None,
    grace: float | None = None,
) -> PassResult:
    """Claim and send every due tick of one task; see the module's docstring."""
    now = now or timezone.now()
    grace = settings.SCHEDULE_GRACE_SECONDS if grace is None else grace
    on_time_after = now - timedelta(seconds=grace)
    cursor = last_due(periodic.name)
    if cursor is None:
        # A task no scheduler ran before missed nothing: at most its latest
        # due time, if that is on time.
        due_times, older = timing.due_between(periodic.schedule, on_time_after, now, keep=1)
        older = 0
    else:
        due_times, older = timing.due_between(
            periodic.schedule, cursor, now, keep=settings.SCHEDULE_CATCH_UP_LIMIT
        )
    result = PassResult(not_recorded=older)
    if older:
        log.warning(
            "%s: %d ticks fell due while no scheduler ran, beyond the %d kept; not recorded",
            periodic.name,
            older,
            settings.SCHEDULE_CATCH_UP_LIMIT,
        )
    for due in due_times:
        on_time = due >= on_time_after
        runs = on_time or periodic.catch_up
        outcome = Tick.Outcome.DISPATCHED if runs else Tick.Outcome.SKIPPED
        tick = claim(periodic, due, now, outcome, late=not on_time)
        if tick is None:
            result.lost_to_others += 1
        elif runs:
            log.info(
                "tick %s: %s (%s) due %s claimed%s",
                tick.pk,
                periodic.name,
                periodic.task,
                due.isoformat(),
                "" if on_time else ", late: catching up",
            )
            send_safely(tick, send)
            result.dispatched.append(tick)
        else:
            log.info(
                "tick %s: %s due %s skipped: it fell due while no scheduler ran",
                tick.pk,
                periodic.name,
                due.isoformat(),
            )
            result.skipped += 1
    result.next_due = timing.next_due(periodic.schedule, max([now, *due_times]))
    return result


def send_safely(tick: Tick, send: Send) -> bool:
    """Send; a failure leaves the tick dispatched, and the sweep sends it again."""
    try:
        send(tick)
    except Exception as exc:
        log.warning("tick %s: could not send it (%s); will try again", tick.pk, exc)
        return False
    return True


def sweep(send: Send, now: datetime | None = None) -> dict[str, int]:
    """Send again the ticks whose message was lost; settle the interrupted runs."""
    now = now or timezone.now()
    counts = {"redispatched": 0, "rerun": 0, "interrupted": 0}
    lost = Tick.objects.filter(
        outcome=Tick.Outcome.DISPATCHED,
        dispatched_at__lt=now - timedelta(seconds=settings.SCHEDULE_REDISPATCH_AFTER_SECONDS),
    )
    dead_run = Q(outcome=Tick.Outcome.RUNNING, lease_expires_at__lt=now)
    for tick in list(lost[:100]) + list(Tick.objects.filter(dead_run)[:100]):
        fence = Q(pk=tick.pk, dispatches=tick.dispatches, outcome=tick.outcome)
        if tick.outcome == Tick.Outcome.RUNNING and not tick.catch_up:
            if Tick.objects.filter(fence).update(
                outcome=Tick.Outcome.INTERRUPTED, finished_at=now, lease_expires_at=None
            ):
                log.warning("tick %s: %s interrupted: its worker died", tick.pk, tick.name)
                counts["interrupted"] += 1
            continue
        taken = Tick.objects.filter(fence).update(
            outcome=Tick.Outcome.DISPATCHED,
            dispatched_at=now,
            dispatches=F("dispatches") + 1,
            claimed_by=dyno_name(),
            claimed_pid=os.getpid(),
            lease_expires_at=None,
        )
        if taken:
            tick.refresh_from_db()
            kind = "rerun" if tick.runs else "redispatched"
            log.warning("tick %s: %s due %s sent again (%s)", tick.pk, tick.name, tick.due_at, kind)
            send_safely(tick, send)
            counts[kind] += 1
    return counts


def prune_history(names: list[str], now: datetime | None = None) -> int:
    """Delete ticks older than SCHEDULE_HISTORY_HOURS, keeping each task's newest
    (the cursor of step 1)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.SCHEDULE_HISTORY_HOURS)
    settled = ~Q(outcome__in=[Tick.Outcome.DISPATCHED, Tick.Outcome.RUNNING])
    deleted = 0
    for name in Tick.objects.values_list("name", flat=True).distinct():
        keep_after = cutoff
        if name in names:
            keep_after = min(cutoff, last_due(name) or cutoff)
        deleted += Tick.objects.filter(settled, name=name, due_at__lt=keep_after).delete()[0]
    if deleted:
        log.info(
            "pruned %d scheduled ticks older than %s h", deleted, settings.SCHEDULE_HISTORY_HOURS
        )
    return deleted


def heartbeat(started_at: datetime, now: datetime | None = None) -> None:
    now = now or timezone.now()
    SchedulerHeartbeat.objects.update_or_create(
        key=f"{dyno_name()}:{os.getpid()}",
        defaults={
            "dyno": dyno_name(),
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen": now,
        },
    )


def forget_heartbeat() -> None:
    SchedulerHeartbeat.objects.filter(key=f"{dyno_name()}:{os.getpid()}").delete()
