"""Checks behind /healthz: one per layer of the dyno."""

import functools
import os
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

PING_TIMEOUT_SECONDS = 1.0


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
    }


def database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def broker() -> dict:
    with celery_app.connection_for_write() as conn:
        # One quick try: a health check must answer fast when the broker is down.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return {"ok": True, "transport": conn.transport_cls, "queued": waiting_messages(conn)}


@functools.cache
def _supports_broadcast() -> bool:
    # A property of the transport class: learn it once, not on every probe.
    with celery_app.connection_for_write() as conn:
        return "fanout" in conn.transport.implements.exchange_type


def workers() -> dict:
    if _supports_broadcast():
        replies = celery_app.control.ping(timeout=PING_TIMEOUT_SECONDS)
        names = sorted(name for reply in replies for name in reply)
        return {"ok": bool(names), "count": len(names), "names": names, "method": "ping"}
    fresh = timezone.now() - timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    beats = list(WorkerHeartbeat.objects.filter(last_seen__gte=fresh).order_by("hostname"))
    return {
        "ok": bool(beats),
        "count": len(beats),
        "names": [beat.hostname for beat in beats],
        "method": "heartbeat",
        "pids": {beat.hostname: {"main": beat.pid, "pool": beat.pool_pids} for beat in beats},
    }


def report(dyno_only: bool = False) -> dict:
    """Every layer's state; `dyno_only` leaves out what runs on other dynos.

    In split mode the Celery worker runs on its own dyno, so a web dyno's
    startup check (app.json) must not wait for it; in one-dyno mode the worker
    is part of this dyno and is always checked.
    """
    checks = {"web": _timed(web), "database": _timed(database), "broker": _timed(broker)}
    if dyno_only and os.environ.get("DOUBLE_BOILER_MODE", "one-dyno") == "split":
        checks["workers"] = {"ok": True, "skipped": "split mode: the worker runs on its own dyno"}
    elif checks["broker"]["ok"]:
        checks["workers"] = _timed(workers)
    else:
        # Pinging workers through a dead broker would only wait for timeouts.
        checks["workers"] = {"ok": False, "error": "not checked: the broker is unreachable"}
    failing = [name for name, check in checks.items() if not check["ok"]]
    if "error" in checks["workers"] or checks["workers"].get("count") == 0:
        checks["workers"].setdefault("error", "no live Celery worker answered")
    return {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
