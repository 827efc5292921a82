"""Each add-on refuses connections past its plan's limit, as Heroku's plans do.

Heroku Postgres essential-0: 20 connections
(https://devcenter.heroku.com/articles/heroku-postgres-plans); Heroku Redis mini: 20
(https://devcenter.heroku.com/articles/heroku-redis-technical-characterization).
"""

from __future__ import annotations

import contextlib
import ssl

import psycopg
import pytest
import redis

from tests.standins.heroku_api.client import StandInClient
from tests.standins.heroku_api.model import CONNECTION_LIMITS


def _provisioned(standin: StandInClient, app: str, plan: str) -> str:
    addon = standin.ok("POST", f"/apps/{app}/addons", {"plan": plan})
    standin.wait(
        lambda: standin.ok("GET", f"/apps/{app}/addons/{addon['id']}"),
        lambda a: a["state"] == "provisioned",
        60,
    )
    var = addon["config_vars"][0]
    return standin.ok("GET", f"/apps/{app}/config-vars")[var]


def test_the_figures_are_herokus() -> None:
    assert CONNECTION_LIMITS[("heroku-postgresql", "essential-0")] == 20
    assert CONNECTION_LIMITS[("heroku-redis", "mini")] == 20


def test_postgres_essential_0_refuses_the_21st_connection(
    standin: StandInClient, app_name: str
) -> None:
    url = _provisioned(standin, app_name, "heroku-postgresql:essential-0")
    with contextlib.ExitStack() as stack:
        for _ in range(20):
            stack.enter_context(psycopg.connect(url, sslmode="require"))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            psycopg.connect(url, sslmode="require")
    # Connections closed: room again.
    with psycopg.connect(url, sslmode="require") as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_redis_mini_refuses_the_21st_client_and_each_addon_has_its_own(
    standin: StandInClient, app_name: str
) -> None:
    url = _provisioned(standin, app_name, "heroku-redis:mini")
    other = _provisioned(standin, app_name, "heroku-redis:mini")
    assert url.rsplit(":", 1)[1] != other.rsplit(":", 1)[1]  # a server each
    clients = []
    try:
        for _ in range(20):
            client = redis.Redis.from_url(url, ssl_cert_reqs=ssl.CERT_NONE)
            assert client.ping()
            clients.append(client)
        extra = redis.Redis.from_url(url, ssl_cert_reqs=ssl.CERT_NONE)
        # Redis writes "-ERR max number of clients reached" and closes before the TLS
        # handshake (redis/redis src/networking.c acceptCommonHandler), so a rediss://
        # client sees the connection closed; the server counts it as rejected.
        with pytest.raises(redis.ConnectionError):
            extra.ping()
        stats = clients[0].info("stats")
        assert stats["rejected_connections"] >= 1
        # The other add-on's limit is its own.
        assert redis.Redis.from_url(other, ssl_cert_reqs=ssl.CERT_NONE).ping()
    finally:
        for client in clients:
            client.close()


def test_a_plan_change_carries_the_new_limit(standin: StandInClient, app_name: str) -> None:
    url = _provisioned(standin, app_name, "heroku-postgresql:essential-0")
    (addon,) = standin.ok("GET", f"/apps/{app_name}/addons")
    standin.ok(
        "PATCH", f"/apps/{app_name}/addons/{addon['id']}", {"plan": "heroku-postgresql:essential-2"}
    )
    with contextlib.ExitStack() as stack:
        for _ in range(40):
            stack.enter_context(psycopg.connect(url, sslmode="require"))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            psycopg.connect(url, sslmode="require")
