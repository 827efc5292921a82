"""The demo page. (The benchmark's endpoints live in bench/views.py.)"""

import os
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.views import CURSOR_OVERLAP, encode_cursor

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
