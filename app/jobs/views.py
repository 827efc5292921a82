"""HTTP API for jobs, and /healthz.

The API has no session authentication, so it is exempt from CSRF: there is no
ambient credential for another site to ride on.
"""

import json
import os
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import health
from .models import Job
from .tasks import run_job

PAGE_SIZE = 1000
# Changes committed a moment after a poll can carry a slightly older timestamp;
# re-sending the last second of changes means a polling client never misses one.
CURSOR_OVERLAP = timedelta(seconds=1)
LIMITS = {"io_wait_ms": (0, 30_000), "cpu_iterations": (0, 1_000_000)}


class BadRequest(ValueError):
    pass


def error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def read_json(request: HttpRequest) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def job_parameters(body: dict) -> dict:
    params = {}
    for name, (low, high) in LIMITS.items():
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise BadRequest(f"{name} must be a whole number from {low} to {high}")
        params[name] = value
    return params


def enqueue(jobs: list[Job]) -> JsonResponse | None:
    """Send one message per job; the rows stay queued if the broker is down."""
    try:
        for job in jobs:
            run_job.delay(job.pk)
    except Exception as exc:
        return JsonResponse(
            {
                "error": f"the broker did not take the jobs ({type(exc).__name__}); they are "
                "recorded and will be queued again when a worker starts",
                "ids": [job.pk for job in jobs],
            },
            status=503,
        )
    return None


def create_jobs(count: int, params: dict) -> list[Job]:
    now = timezone.now()
    pid = os.getpid()
    with transaction.atomic():
        return Job.objects.bulk_create(
            [Job(web_pid=pid, created_at=now, updated_at=now, **params) for _ in range(count)]
        )


@csrf_exempt
@require_POST
def create_batch(request: HttpRequest) -> JsonResponse:
    try:
        body = read_json(request)
        count = body.pop("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            raise BadRequest("count must be a whole number")
        if not 1 <= count <= settings.JOBS_MAX_BATCH:
            raise BadRequest(f"count must be from 1 to {settings.JOBS_MAX_BATCH}")
        params = job_parameters(body)
    except BadRequest as exc:
        return error(str(exc))
    jobs = create_jobs(count, params)
    return enqueue(jobs) or JsonResponse({"ids": [job.pk for job in jobs]}, status=202)


def encode_cursor(moment: datetime, last_id: int) -> str:
    return f"{int(moment.timestamp() * 1_000_000)}-{last_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        micros, _, last_id = cursor.partition("-")
        moment = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        return moment, int(last_id or 0)
    except (ValueError, OverflowError, OSError):
        raise BadRequest("since must be a cursor returned by this API") from None


def jobs_since(cursor: str) -> dict:
    now = timezone.now()
    if cursor:
        moment, last_id = decode_cursor(cursor)
    else:
        moment, last_id = datetime.fromtimestamp(0, tz=UTC), 0
    rows = list(
        Job.objects.filter(
            Q(updated_at__gt=moment) | Q(updated_at=moment, id__gt=last_id)
        ).order_by("updated_at", "id")[: PAGE_SIZE + 1]
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if more:
        next_cursor = encode_cursor(rows[-1].updated_at, rows[-1].pk)
    else:
        next_cursor = encode_cursor(max(now - CURSOR_OVERLAP, moment), 0)
    return {"jobs": [job.as_dict() for job in rows], "cursor": next_cursor, "more": more}


def jobs_by_id(raw_ids: str) -> dict:
    try:
        ids = sorted({int(part) for part in raw_ids.split(",") if part.strip()})
    except ValueError:
        raise BadRequest("ids must be a comma-separated list of job ids") from None
    if len(ids) > PAGE_SIZE:
        raise BadRequest(f"ask for at most {PAGE_SIZE} ids at once")
    jobs = Job.objects.filter(pk__in=ids).order_by("id")
    return {"jobs": [job.as_dict() for job in jobs]}


@csrf_exempt
@require_http_methods(["GET", "POST"])
@never_cache
def jobs_collection(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        try:
            params = job_parameters(read_json(request))
        except BadRequest as exc:
            return error(str(exc))
        jobs = create_jobs(1, params)
        return enqueue(jobs) or JsonResponse({"id": jobs[0].pk}, status=202)
    try:
        if "ids" in request.GET:
            return JsonResponse(jobs_by_id(request.GET["ids"]))
        return JsonResponse(jobs_since(request.GET.get("since", "")))
    except BadRequest as exc:
        return error(str(exc))


@require_GET
@never_cache
def job_detail(request: HttpRequest, job_id: int) -> JsonResponse:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return error(f"no job {job_id}", status=404)
    return JsonResponse(job.as_dict())


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report = health.report(dyno_only=request.GET.get("scope") == "dyno")
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
