"""A busy dyno stays within its add-on plans' connection limits (issue 10 item 3).

The role sized the pools for Heroku Postgres essential-0 and Heroku Redis mini, 20
connections each (heroku_connection_budget); the scenario's Basic dyno has no preboot,
so old and new dynos do not overlap. Here the dyno is made busy (50 concurrent
/healthz probes, which read the database and the broker, and a batch of jobs) while
its connections are counted on the server side (pg_stat_activity for the add-on's
role, CLIENT LIST for Redis): the peak must stay within the limit, 2 PostgreSQL
connections kept for the release phase, and /healthz must be green right after.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import psycopg
import pytest
import redis
from conftest import APP, http_json, wait_for

from tests.standins.heroku_api.client import StandInClient

PLAN_LIMIT = 20  # essential-0 and mini: see heroku_connection_budget.PLAN_LIMITS
RESERVED = 2  # PostgreSQL connections kept for the release phase and `heroku run`


@pytest.fixture(scope="module")
def config(api: StandInClient) -> dict:
    return api.ok("GET", f"/apps/{APP}/config-vars")


def _pg_count(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE usename = current_user AND pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0])


def _redis_count(client: redis.Redis) -> int:
    mine = client.client_id()
    return sum(1 for c in client.client_list() if int(c["id"]) != mine)


def test_a_busy_dyno_stays_within_the_plans(api: StandInClient, config: dict) -> None:
    web_url = api.ok("GET", f"/apps/{APP}")["web_url"]
    pg = psycopg.connect(config["DATABASE_URL"], autocommit=True, sslmode="require")
    rd = redis.Redis.from_url(config["REDIS_URL"], ssl_cert_reqs="none")
    peaks = {"postgresql": 0, "redis": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peaks["postgresql"] = max(peaks["postgresql"], _pg_count(pg))
            peaks["redis"] = max(peaks["redis"], _redis_count(rd))
            time.sleep(0.05)

    def client() -> None:
        while not stop.is_set():
            # a refused or cut request still counts as load
            with contextlib.suppress(OSError, ValueError):
                http_json(web_url + "healthz", timeout=30)

    sampler = threading.Thread(target=sample)
    clients = [threading.Thread(target=client) for _ in range(50)]
    sampler.start()
    for thread in clients:
        thread.start()
    try:
        _, answer = http_json(
            web_url + "api/jobs/batch", json.dumps({"count": 60, "io_wait_ms": 100}).encode()
        )
        ids = answer["ids"]
        wait_for(
            lambda: http_json(web_url + "api/jobs?ids=" + ",".join(map(str, ids)))[1],
            lambda a: all(job["status"] == "done" for job in a["jobs"]),
            timeout=120,
        )
    finally:
        stop.set()
        for thread in [*clients, sampler]:
            thread.join()
        pg.close()
        rd.close()
    print(f"peak connections of one busy dyno: {peaks} (limit {PLAN_LIMIT} each)")
    assert peaks["postgresql"] <= PLAN_LIMIT - RESERVED, peaks
    # The stand-in refuses connections past the plan's limit, as Heroku does, and this
    # sampler holds one of them: an app that reached the cap shows PLAN_LIMIT - 1.
    assert peaks["redis"] < PLAN_LIMIT - 1, peaks
    # and nothing was refused: every layer is green right after the busy minute
    status, report = http_json(web_url + "healthz", timeout=30)
    assert status == 200, report
