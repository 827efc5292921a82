"""/healthz as the deploy roles read it, and one job: add numbers up in the worker."""

import json
import os

from django.db import connection
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .celery import app
from .models import Job
from .tasks import add_up


def _check(probe) -> dict:
    try:
        return {"ok": True, **probe()}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def _broker() -> dict:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": conn.transport_cls}


def _workers() -> dict:
    names = sorted(name for reply in app.control.ping(timeout=1.0) for name in reply)
    if not names:
        raise RuntimeError("no live Celery worker answered")
    return {"count": len(names), "names": names}


def healthz(request):
    """200 and status ok when every layer is up, else 503 naming what fails.

    ?scope=dyno leaves the workers out in split mode, where they run in another dyno.
    """
    checks = {
        "web": {"ok": True, "pid": os.getpid(), "worker_class": os.environ.get("WEB_WORKER_CLASS")},
        "database": _check(_database),
        "broker": _check(_broker),
    }
    split = os.environ.get("DOUBLE_BOILER_MODE", "one-dyno") == "split"
    if request.GET.get("scope") == "dyno" and split:
        checks["workers"] = {"ok": True, "skipped": "split mode"}
    else:
        checks["workers"] = _check(_workers) if checks["broker"]["ok"] else {"ok": False}
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)


@csrf_exempt
def jobs(request):
    if request.method != "POST":
        return JsonResponse({"error": 'POST {"numbers": [...]}'}, status=405)
    numbers = json.loads(request.body or b"{}").get("numbers", [])
    if not isinstance(numbers, list) or not all(isinstance(n, int) for n in numbers):
        return JsonResponse({"error": "numbers must be a list of whole numbers"}, status=400)
    job = Job.objects.create(numbers=numbers)
    add_up.delay(job.pk)
    return JsonResponse({"id": job.pk}, status=202)


def job(request, pk: int):
    try:
        found = Job.objects.get(pk=pk)
    except Job.DoesNotExist:
        raise Http404 from None
    return JsonResponse(
        {"id": found.pk, "done": found.done, "total": found.total, "worker_pid": found.worker_pid}
    )
