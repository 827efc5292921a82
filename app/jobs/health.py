"""Checks behind /healthz: one per layer of the dyno."""

import functools
import json
import os
import socket
import sys
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from doubleboiler.celery import app as celery_app
from doubleboiler.celery import waiting_messages

from .middleware import inflight
from .models import WorkerHeartbeat


def _timed(check):
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def web() -> dict:
    gevent_patched = False
    if "gevent.monkey" in sys.modules:
        gevent_patched = sys.modules["gevent.monkey"].is_module_patched("socket")
    return {
        "ok": True,
        "pid": os.getpid(),
        "worker_class": os.environ.get("WEB_WORKER_CLASS", "unknown"),
        "gevent_patched": gevent_patched,
        "inflight": inflight(),
        # What bin/dyno chose from the dyno's memory and CPUs (absent when not run by it).
        "sizing": json.loads(os.environ.get("DYNO_SIZING", "null")),
    }


def database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    finally:
        # Give the connection back to the pool now: the probe goes on to wait on
        # the broker, and many concurrent probes holding their connections all
        # that time starved the pool (DATABASE_POOL_SIZE) for every other request.
        if not connection.in_atomic_block:
            connection.close()


def broker() -> dict:
    # A connection of the process's pool (CELERY_BROKER_POOL_LIMIT), not a new one: on a
    # plan with a connection cap, concurrent probes each opening their own passed it.
    with celery_app.connection_or_acquire() as conn:
        # One quick try: a health check must answer fast when the broker is down.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return {"ok": True, "transport": conn.transport_cls, "queued": waiting_messages(conn)}


def on_this_dyno(node_name: str) -> bool:
    """Whether a Celery node name (`celery@<host>`, Celery's default) is this container's.

    During a zero-downtime deploy the old container keeps serving until the new one passes
    its checks (dokku/dokku plugins/scheduler-docker-local/scheduler-deploy), so the old
    dyno's worker answers too: the new dyno's check must count only its own.
    """
    return node_name.partition("@")[2] == socket.gethostname()


def workers(dyno_only: bool = False) -> dict:
    """Celery workers whose heartbeat row is fresh (jobs.worker.Heartbeat).

    The row is written from the worker's event loop, the loop that consumes, so a fresh
    one means a worker that runs and fetches. Not Celery's broadcast ping, on any broker:
    the database broker cannot broadcast, and on Redis a ping takes two pooled
    connections and a reply socket in every web worker, which a plan's connection cap
    (Heroku Redis mini: 20) cannot spare beside the worker's own.
    """
    keep = on_this_dyno if dyno_only else (lambda name: True)
    fresh = timezone.now() - timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    beats = [
        beat
        for beat in WorkerHeartbeat.objects.filter(last_seen__gte=fresh).order_by("hostname")
        if keep(beat.hostname)
    ]
    return {
        "ok": bool(beats),
        "count": len(beats),
        "names": [beat.hostname for beat in beats],
        "method": "heartbeat",
        "pids": {beat.hostname: {"main": beat.pid, "pool": beat.pool_pids} for beat in beats},
    }


def scheduler() -> dict:
    """A live Celery beat seen recently, or why there is none.

    Informational: it never makes /healthz fail (`required` is false). Beats
    coordinate through the database, so any dyno's beat serves the whole app,
    and a tick due while none ran is caught up or recorded as skipped; failing
    a dyno's health for it would only make the platform restart dynos and
    refuse deploys (the roles' checks and Dokku's zero-downtime checks read
    this endpoint). A dead embedded beat stops its worker, which restarts the
    dyno anyway (scheduling/worker.py).
    """
    from scheduling.models import SchedulerHeartbeat, Tick
    from scheduling.scheduler import HEARTBEAT_SECONDS

    now = timezone.now()
    fresh = now - timedelta(seconds=3 * HEARTBEAT_SECONDS)
    beats = list(SchedulerHeartbeat.objects.filter(last_seen__gte=fresh).order_by("key"))
    last = Tick.objects.order_by("-claimed_at").values_list("claimed_at", flat=True).first()
    found = {
        "required": False,
        "count": len(beats),
        "names": [beat.key for beat in beats],
        "last_dispatch": last.isoformat() if last else None,
    }
    if beats:
        return {"ok": True, **found}
    if not settings.SCHEDULE_BEAT:
        return {
            "ok": True,
            **found,
            "note": "SCHEDULE_BEAT is off: `manage.py dispatch_due_ticks` dispatches (Heroku "
            "Scheduler)",
        }
    newest = SchedulerHeartbeat.objects.order_by("-last_seen").first()
    seen = f"last seen {newest.last_seen.isoformat()} ({newest.key})" if newest else "never seen"
    return {
        "ok": False,
        **found,
        "error": f"no Celery beat seen in the last {3 * HEARTBEAT_SECONDS} s; {seen}",
    }


def report(dyno_only: bool = False) -> dict:
    """Every layer's state; `dyno_only` leaves out what runs on other dynos.

    In split mode the Celery worker runs on its own dyno, so a web dyno's
    startup check (app.json) must not wait for it; in one-dyno mode the worker
    is part of this dyno and is always checked, and only this dyno's counts.
    """
    checks = {"web": _timed(web), "database": _timed(database), "broker": _timed(broker)}
    if dyno_only and os.environ.get("DOUBLE_BOILER_MODE", "one-dyno") == "split":
        checks["workers"] = {"ok": True, "skipped": "split mode: the worker runs on its own dyno"}
    elif checks["broker"]["ok"]:
        checks["workers"] = _timed(functools.partial(workers, dyno_only=dyno_only))
    else:
        # Pinging workers through a dead broker would only wait for timeouts.
        checks["workers"] = {"ok": False, "error": "not checked: the broker is unreachable"}
    if checks["database"]["ok"]:
        checks["scheduler"] = _timed(scheduler)
    else:
        checks["scheduler"] = {"ok": False, "required": False, "error": "not checked: no database"}
    checks["scheduler"].setdefault("required", False)
    failing = [
        name for name, check in checks.items() if not check["ok"] and check.get("required", True)
    ]
    warnings = [name for name, check in checks.items() if not check["ok"] and name not in failing]
    if "error" in checks["workers"] or checks["workers"].get("count") == 0:
        checks["workers"].setdefault("error", "no live Celery worker answered")
    return {
        "status": "fail" if failing else "ok",
        "failing": failing,
        "warnings": warnings,
        "checks": checks,
    }
