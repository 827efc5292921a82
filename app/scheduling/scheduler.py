"""Celery beat's scheduler: django-celery-beat's schedules, one dispatch per tick.

django-celery-beat's DatabaseScheduler keeps the schedules in the database
(PeriodicTask with its IntervalSchedule or CrontabSchedule), loads
CELERY_BEAT_SCHEDULE into it at start, and notices changes. It does nothing
to stop two beats from both sending the same tick: it holds no lock, each
beat keeps its own `last_run_at` in memory and fires when its own interval
has passed, and saves that field back every few minutes (last writer wins).
So this subclass keeps its storage and change detection and replaces the
decision of what to send (claims.py): due times every beat agrees on, each
claimed once in the Tick table.

Per entry of CELERY_BEAT_SCHEDULE, besides Celery's keys, `catch_up` (default
False) says what to do with a tick that fell due while no scheduler ran: run
it once when one is back (True), or record it as skipped.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta

from celery import current_app
from django.db import DatabaseError, IntegrityError, close_old_connections
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from . import claims, timing
from .models import Tick
from .worker import embedded_parent

log = logging.getLogger(__name__)

FROM_SETTINGS = "from CELERY_BEAT_SCHEDULE"
HEARTBEAT_SECONDS = 5
SWEEP_SECONDS = 5
PRUNE_SECONDS = 600


def configured_entries() -> dict[str, dict]:
    return dict(current_app.conf.beat_schedule or {})


def catch_up_policy() -> dict[str, bool]:
    return {name: bool(entry.get("catch_up")) for name, entry in configured_entries().items()}


def send_to_worker(tick: Tick, producer=None) -> None:
    current_app.send_task("scheduling.run_tick", args=[tick.pk], producer=producer)


class ExactlyOnceScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs):
        self._next_due: dict[str, datetime] = {}
        self._timers = {"heartbeat": 0.0, "sweep": 0.0, "prune": 0.0}
        self._started_at = timezone.now()
        self._catch_up: dict[str, bool] = {}
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        self._catch_up = catch_up_policy()
        entries = {}
        for name, entry in configured_entries().items():
            entry = {key: value for key, value in entry.items() if key != "catch_up"}
            entries[name] = {**entry, "description": FROM_SETTINGS}
        # No install_default_entries: its one entry, celery.backend_cleanup, cleans a
        # result backend, and job state lives in rows, not in Celery results.
        self.update_from_dict(entries)
        # A task taken out of the setting stops; tasks added in the database stay.
        gone = PeriodicTask.objects.filter(description=FROM_SETTINGS, enabled=True).exclude(
            name__in=list(entries)
        )
        for task in gone:
            log.info("scheduled task %s is no longer in CELERY_BEAT_SCHEDULE: disabled", task.name)
            task.enabled = False
            task.save()

    def update_from_dict(self, mapping):
        # Two beats starting together both insert the same PeriodicTask; the
        # loser's insert fails, and reading again finds the winner's row.
        for attempt in range(2):
            try:
                return super().update_from_dict(mapping)
            except IntegrityError:
                if attempt:
                    raise

    def periodic(self, entry) -> claims.Periodic:
        return claims.Periodic(
            name=entry.name,
            task=entry.task,
            schedule=entry.schedule,
            catch_up=self._catch_up.get(entry.name, False),
            args=list(entry.args or []),
            kwargs=dict(entry.kwargs or {}),
        )

    def send(self, tick: Tick) -> None:
        send_to_worker(tick, producer=self.producer)

    def every(self, timer: str, seconds: float) -> bool:
        if time.monotonic() - self._timers[timer] < seconds:
            return False
        self._timers[timer] = time.monotonic()
        return True

    def tick(self, *args, **kwargs) -> float:
        """One pass: claim and send what is due; return the seconds to sleep."""
        try:
            return self._tick()
        except DatabaseError:
            log.exception("scheduler pass failed; trying again")
            close_old_connections()
            return self.max_interval

    def _tick(self) -> float:
        parent = embedded_parent()
        if parent is not None and os.getppid() != parent:
            # The worker that forked this beat is gone: so is the dyno.
            log.warning("embedded beat: worker %s is gone; stopping", parent)
            raise SystemExit(0)
        now = timezone.now()
        if self.every("heartbeat", HEARTBEAT_SECONDS):
            claims.heartbeat(self._started_at, now)
        entries = self.schedule  # django-celery-beat re-reads it when it changed
        wait = float(self.max_interval)
        for name, entry in entries.items():
            due = self._next_due.get(name)
            if due is None or now >= due:
                try:
                    due = claims.dispatch_due(self.periodic(entry), self.send, now=now).next_due
                except timing.UnsupportedSchedule as exc:
                    log.error("scheduled task %s ignored: %s", name, exc)
                    due = now + timedelta(seconds=300)
                self._next_due[name] = due
            wait = min(wait, (due - now).total_seconds())
        for gone in set(self._next_due) - set(entries):
            del self._next_due[gone]
        if self.every("sweep", SWEEP_SECONDS):
            claims.sweep(self.send, now)
        if self.every("prune", PRUNE_SECONDS):
            claims.prune_history(list(entries), now)
        return max(wait, 0.05)

    def close(self):
        try:
            claims.forget_heartbeat()
        except DatabaseError:
            log.warning("could not remove the scheduler's heartbeat")
        super().close()


def live_entries() -> dict[str, object]:
    """What the scheduler would run, read from the database (for views and the command)."""
    from django_celery_beat.schedulers import ModelEntry

    found = {}
    for model in PeriodicTask.objects.enabled().select_related(
        "interval", "crontab", "solar", "clocked"
    ):
        try:
            found[model.name] = ModelEntry(model, app=current_app)
        except ValueError:
            continue
    return found


def periodics() -> list[claims.Periodic]:
    policy = catch_up_policy()
    return [
        claims.Periodic(
            name=name,
            task=entry.task,
            schedule=entry.schedule,
            catch_up=policy.get(name, False),
            args=list(entry.args or []),
            kwargs=dict(entry.kwargs or {}),
        )
        for name, entry in live_entries().items()
    ]


def ensure_schedule_loaded() -> None:
    """Load CELERY_BEAT_SCHEDULE into the database, as a starting beat does."""
    ExactlyOnceScheduler(app=current_app, lazy=True).setup_schedule()
