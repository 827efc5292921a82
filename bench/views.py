"""The benchmark's I/O-bound endpoints, routed only by the benchmark's settings.

Each request's work is one call to a slow upstream (bench/upstream.py, a local HTTP
server that answers after a delay): `bench_io` for WSGI workers (Gunicorn gevent or
sync), `bench_io_async` for an ASGI server. They do the same thing; only the
concurrency model differs.
"""

import os

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import io_client


def _upstream_failed(exc: Exception) -> JsonResponse:
    status = 503 if isinstance(exc, io_client.UpstreamError) else 502
    return JsonResponse({"error": f"{type(exc).__name__}: {exc}"}, status=status)


@require_GET
@never_cache
def bench_io(request: HttpRequest) -> JsonResponse:
    try:
        outcome = io_client.fetch(io_client.configured_target())
    except (io_client.UpstreamError, OSError) as exc:
        return _upstream_failed(exc)
    return JsonResponse({**outcome, "pid": os.getpid(), "mode": "sync"})


@require_GET
@never_cache
async def bench_io_async(request: HttpRequest) -> JsonResponse:
    try:
        outcome = await io_client.afetch(io_client.configured_target())
    except (io_client.UpstreamError, OSError, TimeoutError) as exc:
        return _upstream_failed(exc)
    return JsonResponse({**outcome, "pid": os.getpid(), "mode": "async"})
