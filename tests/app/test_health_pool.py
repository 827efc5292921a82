"""/healthz under many concurrent probes with a small broker pool (issue 10 item 3).

Celery's worker ping holds a pooled broker connection while it takes a producer from
the producer pool, which draws from the same connections: with CELERY_BROKER_POOL_LIMIT
sized to a Redis plan (2 on mini), two concurrent pings used to take both connections
and wait for each other forever, and every later publish of the process with them.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.redis import redis_available, redis_server

APP = Path(__file__).resolve().parents[2] / "app"

PROBES = """
from gevent import monkey; monkey.patch_all()
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doubleboiler.settings")
django.setup()
import gevent
from jobs import health
probes = [gevent.spawn(health.workers) for _ in range(8)]
gevent.joinall(probes, timeout=20)
print("finished", sum(1 for p in probes if p.ready()))
"""


@pytest.fixture
def redis_url():
    if not redis_available():
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    with redis_server() as url:
        yield url


def test_concurrent_probes_do_not_deadlock_a_small_broker_pool(redis_url):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DEBUG": "true",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_POOL_LIMIT": "2",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBES], cwd=APP, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "finished 8", result.stderr[-2000:]
