"""The demo page, and the I/O-bound endpoint the benchmark loads.

The benchmark endpoint's work is one call to a slow upstream (a local HTTP
server that answers after 100 ms): `bench_io` for WSGI workers, `bench_io_async`
for an ASGI server. They do the same thing; only the concurrency model differs.
"""

import os
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.views import CURSOR_OVERLAP, encode_cursor

from . import upstream

# Bounds of the page's controls; the server enforces its own (JOBS_MAX_BATCH).
DEMO_DEFAULTS = {
    "jobs": 500,
    "batch": 10,
    "parallel": 16,
    "io_wait_ms": 100,
    "cpu_iterations": 20_000,
}


@require_GET
@never_cache
def index(request: HttpRequest) -> HttpResponse:
    # A cursor for "now", so the page polls only changes from here on instead
    # of paging through every job the database ever held.
    cursor = encode_cursor(timezone.now() - CURSOR_OVERLAP - timedelta(seconds=1), 0)
    context = {
        "defaults": DEMO_DEFAULTS,
        "max_batch": getattr(settings, "JOBS_MAX_BATCH", 1000),
        "cursor": cursor,
        "pid": os.getpid(),
    }
    return render(request, "demo/index.html", context)


def _upstream_failed(exc: Exception) -> JsonResponse:
    status = 503 if isinstance(exc, upstream.UpstreamError) else 502
    return JsonResponse({"error": f"{type(exc).__name__}: {exc}"}, status=status)


@require_GET
@never_cache
def bench_io(request: HttpRequest) -> JsonResponse:
    try:
        outcome = upstream.fetch(upstream.configured_target())
    except (upstream.UpstreamError, OSError) as exc:
        return _upstream_failed(exc)
    return JsonResponse({**outcome, "pid": os.getpid(), "mode": "sync"})


@require_GET
@never_cache
async def bench_io_async(request: HttpRequest) -> JsonResponse:
    try:
        outcome = await upstream.afetch(upstream.configured_target())
    except (upstream.UpstreamError, OSError, TimeoutError) as exc:
        return _upstream_failed(exc)
    return JsonResponse({**outcome, "pid": os.getpid(), "mode": "async"})
