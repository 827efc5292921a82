"""Hold a request open until its job finishes (GET /api/jobs/<id>?wait=<seconds>).

One watcher per web process polls the database for every job its held requests
wait on, in one query per interval however many they are, and wakes each
request through an Event. Under Gunicorn's gevent worker the watcher is a
greenlet and `Event.wait` and `time.sleep` yield to the loop (the standard
library is patched), so a held request costs a greenlet and a socket: no
database connection and no thread. Under gthread each held request holds one
of the worker's threads, under sync the whole worker.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

from .models import Job

log = logging.getLogger(__name__)

# Under the routers' limits: Heroku answers H12 when a response has not started
# after 30 s (https://devcenter.heroku.com/articles/request-timeout); Dokku's
# nginx waits 60 s (proxy-read-timeout: dokku/dokku docs/networking/proxies/nginx.md,
# plugins/nginx-vhosts/templates/nginx.conf.sigil).
MAX_WAIT_SECONDS = 25
POLL_SECONDS = 0.1
FINISHED = (Job.Status.DONE, Job.Status.FAILED)
# SQLite takes at most 32,766 parameters per statement (999 before 3.32).
CHUNK = 500


class Watcher:
    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._waiting: dict[int, list[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self.polls = 0  # polls made (the tests read it)

    def waiting(self) -> int:
        with self._lock:
            return sum(len(events) for events in self._waiting.values())

    def wait(self, job_id: int, timeout: float) -> bool:
        """True once the job is done or failed; False when `timeout` ran out first."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, []).append(event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-watcher", daemon=True)
                self._thread.start()
        try:
            return event.wait(timeout)
        finally:
            with self._lock:
                events = self._waiting.get(job_id, [])
                if event in events:
                    events.remove(event)
                if not events:
                    self._waiting.pop(job_id, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                ids = list(self._waiting)
                if not ids:
                    self._thread = None  # the next wait starts a new watcher
                    return
            try:
                finished = self._finished(ids)
            except Exception:
                log.exception("the job watcher could not read the jobs; trying again")
                finished = set()
            with self._lock:
                for job_id in finished:
                    for event in self._waiting.get(job_id, []):
                        event.set()
            time.sleep(self.poll_seconds)

    def _finished(self, ids: list[int]) -> set[int]:
        self.polls += 1
        try:
            found: set[int] = set()
            for start in range(0, len(ids), CHUNK):
                found.update(
                    Job.objects.filter(
                        pk__in=ids[start : start + CHUNK], status__in=FINISHED
                    ).values_list("pk", flat=True)
                )
            return found
        finally:
            connection.close()  # back to the pool (PostgreSQL) between polls


watcher = Watcher()
