"""Tell the client which web process served it and how busy that process was."""

import os
import threading

# Requests this process is serving right now: greenlets under gevent, threads
# under gthread (hence the lock; gevent makes it a greenlet lock), one under sync.
_inflight = 0
_lock = threading.Lock()


def inflight() -> int:
    return _inflight


def _add(step: int) -> None:
    global _inflight
    with _lock:
        _inflight += step


def served_by(get_response):
    def middleware(request):
        _add(1)
        try:
            response = get_response(request)
            response["X-Web-Pid"] = str(os.getpid())
            response["X-Web-Inflight"] = str(_inflight)
            return response
        finally:
            _add(-1)

    return middleware
