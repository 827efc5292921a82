"""Celery beat embedded in the worker, as the original project's `celeryd -B` did.

This bootstep does what `celery worker -B` does (celery.worker.components:Beat
starts celery.beat.EmbeddedService, a process forked from the worker's main
process), with three differences a dyno needs:

- It is a setting, SCHEDULE_BEAT (on by default), so a deployment whose
  dispatching is done by Heroku Scheduler (`dispatch_due_ticks`) turns it off
  without editing LocalProcfile.
- It watches the beat process: `-B` never notices that its beat died, and the
  dyno would go on without a scheduler. Here a dead beat stops the worker
  (a warm shutdown), so bin/dyno exits non-zero and the platform restarts the
  dyno, as when any inner process dies.
- The forked beat drops the database connections it inherited (closing them
  would also break the parent's), and exits if its parent died, so an orphan
  of a killed worker does not outlive it.

Why in the worker and not a third LocalProcfile process: docs/reliability.md
("Scheduled tasks") has the memory figures of both.
"""

from __future__ import annotations

import logging
import os
import signal

from celery import bootsteps
from celery.beat import EmbeddedService
from celery.signals import beat_embedded_init
from celery.worker import state
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

SCHEDULER = "scheduling.scheduler:ExactlyOnceScheduler"
WATCH_SECONDS = 2.0
_parent_pid: int | None = None
# Connections inherited from the parent, kept referenced so that no garbage
# collection in this process ever closes them on the parent's behalf.
_inherited: list[object] = []


def embedded_parent() -> int | None:
    """The worker that forked this beat, or None outside an embedded beat."""
    return _parent_pid


class EmbeddedBeat(bootsteps.StartStopStep):
    label = "EmbeddedBeat"
    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.enabled = settings.SCHEDULE_BEAT
        self.service = None
        self.timer_ref = None

    def new_service(self, worker):
        return EmbeddedService(worker.app, scheduler_cls=SCHEDULER)

    def start(self, worker):
        self.service = self.new_service(worker)
        self.service.start()
        log.info("embedded beat started, pid %s", self.service.pid)
        self.timer_ref = worker.timer.call_repeatedly(
            WATCH_SECONDS, self.watch, (worker,), priority=10
        )

    def watch(self, worker):
        if self.service is None or self.service.is_alive():
            return
        if state.should_stop is not None or state.should_terminate is not None:
            return  # the worker is shutting down: its beat stops with it
        # Not forked again in place: by now the worker holds open database
        # connections, and a child forked with SQLite's open (its locks and WAL
        # index) fails with "locking protocol" (tests/app/test_schedule_dyno.py
        # found it). Stopping the worker makes bin/dyno exit non-zero, and the
        # platform restarts the dyno with a fresh beat, as for any inner process.
        log.error(
            "embedded beat (pid %s) died with exit code %s; stopping the worker so the "
            "dyno restarts",
            self.service.pid,
            self.service.exitcode,
        )
        self.service = None
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        if self.service is not None and self.service.is_alive():
            self.service.stop()
            self.service.join(timeout=5)
        self.service = None

    shutdown = stop


@beat_embedded_init.connect
def forget_inherited_connections(**kwargs):
    """In the forked beat: let go of the parent's connections without closing them."""
    global _parent_pid
    _parent_pid = os.getppid()
    for connection in connections.all(initialized_only=True):
        # close() would speak to the server on the parent's socket.
        if connection.connection is not None:
            _inherited.append(connection.connection)
            connection.connection = None
    from kombu.transport.sqlalchemy import Channel

    for engine, _session in Channel._engines.values():
        engine.dispose(close=False)
