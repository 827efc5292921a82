"""Tell the client which web process served it and how busy that process was."""

import os

# Requests this process is serving right now. Greenlets switch only on I/O, so
# a plain integer is safe without a lock.
_inflight = 0


def inflight() -> int:
    return _inflight


def served_by(get_response):
    def middleware(request):
        global _inflight
        _inflight += 1
        try:
            response = get_response(request)
            response["X-Web-Pid"] = str(os.getpid())
            response["X-Web-Inflight"] = str(_inflight)
            return response
        finally:
            _inflight -= 1

    return middleware
