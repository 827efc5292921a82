"""HTTP API for jobs, and /healthz.

The API has no session authentication, so it is exempt from CSRF: there is no
ambient credential for another site to ride on.
"""

import json
import os
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import admission, health, waiting
from .clients import client_address
from .models import Job
from .tasks import run_job

PAGE_SIZE = 1000
# Changes committed a moment after a poll can carry a slightly older timestamp;
# re-sending the last second of changes means a polling client never misses one.
CURSOR_OVERLAP = timedelta(seconds=1)
LIMITS = {"io_wait_ms": (0, 30_000), "cpu_iterations": (0, 1_000_000)}


class BadRequest(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


# The longest whole number a field can need is 7 digits; anything much longer
# is refused before Python converts it (a 4,300-digit number costs real time).
MAX_NUMBER_DIGITS = 15


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    body = {}
    for key, value in pairs:
        if key in body:
            raise BadRequest(f"the field {key!r} appears twice")
        body[key] = value
    return body


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise BadRequest(f"numbers may have at most {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> None:
    raise BadRequest(f"{name} is not a number this API takes (JSON has no NaN or Infinity)")


def read_json(request: HttpRequest, allowed: set[str]) -> dict:
    """The body as a JSON object with only `allowed` fields, or a clear BadRequest."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("the Content-Length header is not a number") from None
    too_big = BadRequest(f"the body is larger than {limit} bytes", status=413)
    if declared > limit:
        raise too_big
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_big from None
    if not raw:
        return {}
    try:
        body = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_int=_bounded_int,
            parse_constant=_no_constant,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the body is not valid JSON (UTF-8)") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(map(repr, unknown))}; this endpoint takes "
            f"{', '.join(sorted(allowed))}"
        )
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


def refused(refusal: admission.Refusal) -> JsonResponse:
    response = JsonResponse(refusal.as_dict(), status=refusal.status)
    if refusal.status == 429:
        response["Retry-After"] = str(refusal.retry_after)
    return response


def create_jobs(request: HttpRequest, count: int, params: dict) -> list[Job] | JsonResponse:
    outcome = admission.admit(client_address(request), count, params, os.getpid())
    if isinstance(outcome, admission.Refusal):
        return refused(outcome)
    return enqueue(outcome) or outcome


BATCH_FIELDS = {"count", *LIMITS}


@csrf_exempt
@require_POST
def create_batch(request: HttpRequest) -> JsonResponse:
    try:
        body = read_json(request, BATCH_FIELDS)
        count = body.pop("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            raise BadRequest("count must be a whole number")
        if not 1 <= count <= settings.JOBS_MAX_BATCH:
            raise BadRequest(f"count must be from 1 to {settings.JOBS_MAX_BATCH}")
        params = job_parameters(body)
    except BadRequest as exc:
        return error(str(exc), exc.status)
    jobs = create_jobs(request, count, params)
    if isinstance(jobs, JsonResponse):
        return jobs
    return JsonResponse({"ids": [job.pk for job in jobs]}, status=202)


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
            params = job_parameters(read_json(request, set(LIMITS)))
        except BadRequest as exc:
            return error(str(exc), exc.status)
        jobs = create_jobs(request, 1, params)
        if isinstance(jobs, JsonResponse):
            return jobs
        return JsonResponse({"id": jobs[0].pk}, status=202)
    try:
        if "ids" in request.GET:
            return JsonResponse(jobs_by_id(request.GET["ids"]))
        return JsonResponse(jobs_since(request.GET.get("since", "")))
    except BadRequest as exc:
        return error(str(exc))


def wait_seconds(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= waiting.MAX_WAIT_SECONDS:  # also refuses nan
        raise BadRequest(f"wait must be a number of seconds from 0 to {waiting.MAX_WAIT_SECONDS}")
    return seconds


@require_GET
@never_cache
def job_detail(request: HttpRequest, job_id: int) -> JsonResponse:
    """The job; with ?wait=N held until it is done or failed, or N seconds passed.

    A long-poll: the answer comes when the job finishes, and a client whose job
    is still queued or running after N seconds asks again.
    """
    try:
        wait = wait_seconds(request.GET.get("wait", "0"))
    except BadRequest as exc:
        return error(str(exc))
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return error(f"no job {job_id}", status=404)
    if wait and job.status not in waiting.FINISHED:
        connection.close()  # no database connection held while the request waits
        waiting.watcher.wait(job_id, wait)
        job.refresh_from_db()
    response = JsonResponse(job.as_dict())
    # The demo page spreads its long-polls over loopback host names (a browser opens
    # at most 6 connections to one); no credential rides on this read.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = "X-Web-Pid, X-Web-Inflight"
    return response


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report = health.report(dyno_only=request.GET.get("scope") == "dyno")
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


# Error answers for the API in JSON, never with a trace or a setting (Django's
# own handlers answer the same way with DEBUG off, in HTML). doubleboiler.urls
# points handler400/403/404/500 here.
def _error_handler(status: int, message: str):
    def handler(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
        return error(message, status)

    return handler


bad_request = _error_handler(400, "bad request")
permission_denied = _error_handler(403, "forbidden")
page_not_found = _error_handler(404, "not found")
server_error = _error_handler(500, "server error: the cause is in the server's log")
