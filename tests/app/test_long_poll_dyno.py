"""Long-polls in the real dyno: one gevent worker holds hundreds of requests at once.

300 jobs are created, and for each a request asks for its result with ?wait=25,
all at once, against the real bin/dyno on SQLite (the default target). Every
request answers with its job done; the server's own counter (X-Web-Inflight,
requests its worker held when it answered) shows what each worker class holds:
gevent well over 100 per worker, sync one at a time.
"""

import json
import threading
import urllib.request
from collections import defaultdict

import pytest

from tests.support.dyno import Dyno
from tests.support.postgres import binaries, postgres_server
from tests.support.redis import redis_available, redis_server

pytestmark = pytest.mark.slow

JOBS = 300


def hold_all(dyno: Dyno, ids: list[int]) -> tuple[list[str], dict[str, int]]:
    statuses: list[str] = []
    peak: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def hold(job_id: int) -> None:
        url = f"{dyno.url}api/jobs/{job_id}?wait=25"
        with urllib.request.urlopen(url, timeout=60) as response:
            status = json.load(response)["status"]
            pid, inflight = response.headers["X-Web-Pid"], int(response.headers["X-Web-Inflight"])
        with lock:
            statuses.append(status)
            peak[pid] = max(peak[pid], inflight)

    threads = [threading.Thread(target=hold, args=(job_id,)) for job_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses, dict(peak)


@pytest.fixture
def services(request):
    """SQLite and the database broker, or PostgreSQL and Redis."""
    if request.param == "sqlite":
        yield {}
        return
    if binaries() is None or not redis_available():
        pytest.skip("needs PostgreSQL and redis-server (apt-get install postgresql redis-server)")
    with postgres_server() as database_url, redis_server() as broker_url:
        yield {"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url}


@pytest.mark.parametrize(
    ("services", "worker_class", "held"),
    [("sqlite", "gevent", 100), ("sqlite", "sync", 1), ("postgresql+redis", "gevent", 100)],
    indirect=["services"],
)
def test_each_job_result_is_served_by_a_held_request(tmp_path, services, worker_class, held):
    dyno = Dyno(tmp_path, env_extra={"GUNICORN_WORKER_CLASS": worker_class, **services})
    dyno.migrate()
    dyno.start()
    try:
        dyno.wait_healthy()
        ids = dyno.post("api/jobs/batch", {"count": JOBS, "io_wait_ms": 20, "cpu_iterations": 0})[
            "ids"
        ]
        statuses, peak = hold_all(dyno, ids)
    finally:
        dyno.stop()
    assert statuses == ["done"] * JOBS
    if worker_class == "gevent":
        assert max(peak.values()) >= held, peak  # one worker held this many at once
    else:
        assert max(peak.values()) == held, peak  # a sync worker holds one at a time
