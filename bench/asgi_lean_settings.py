"""The benchmark's settings minus every middleware that cannot run async.

For the benchmark's "uvicorn, async-only middleware" server only. Under an
ASGI server Django runs each sync-only middleware (here WhiteNoise and the
app's X-Web-Pid one) in a worker thread, wrapping the async view; dropping
them shows what the async view costs without those thread hops.
"""

from django.utils.module_loading import import_string

from bench.settings import *  # noqa: F403
from bench.settings import MIDDLEWARE

SYNC_ONLY_MIDDLEWARE = [
    name for name in MIDDLEWARE if not getattr(import_string(name), "async_capable", False)
]
MIDDLEWARE = [name for name in MIDDLEWARE if name not in SYNC_ONLY_MIDDLEWARE]
