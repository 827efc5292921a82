"""gunicorn.conf.py as Gunicorn itself reads it, against the platforms' routers."""

import os
from pathlib import Path
from unittest import mock

import pytest
from gunicorn.config import Config

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
# Heroku Router 2.0 closes idle keep-alive connections to dynos after 90 s:
# https://devcenter.heroku.com/articles/http-routing#keepalives
HEROKU_ROUTER_KEEPALIVE_IDLE_SECONDS = 90


def _settings() -> Config:
    namespace: dict = {"__file__": str(CONF), "__name__": "__config__"}
    with mock.patch.dict(os.environ):  # the conf sets defaults in the environment
        exec(compile(CONF.read_text(), str(CONF), "exec"), namespace)  # noqa: S102 (our own file)
    config = Config()
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_keepalive_outlasts_the_heroku_routers_idle_keepalive() -> None:
    # The router must be the side that closes an idle connection (else H13/H18).
    assert _settings().keepalive > HEROKU_ROUTER_KEEPALIVE_IDLE_SECONDS


def test_request_timeout_matches_the_routers_30_seconds() -> None:
    # https://devcenter.heroku.com/articles/request-timeout: the router answers H12 at 30 s;
    # a worker still busy later serves nobody.
    assert _settings().timeout == 30


def test_the_worker_class_is_gevent_unless_the_environment_opts_out() -> None:
    assert _settings().worker_class_str == "gevent"
    with mock.patch.dict(os.environ, {"GUNICORN_WORKER_CLASS": "gthread"}):
        config = _settings()
    assert (config.worker_class_str, config.threads) == ("gthread", 4)  # the pool's size
    with mock.patch.dict(
        os.environ, {"GUNICORN_WORKER_CLASS": "gthread", "DATABASE_POOL_SIZE": "3"}
    ):
        assert _settings().threads == 3


def test_an_unknown_worker_class_stops_with_what_to_set() -> None:
    with (
        mock.patch.dict(os.environ, {"GUNICORN_WORKER_CLASS": "eventlet"}),
        pytest.raises(SystemExit, match="set it to one of gevent, sync, gthread"),
    ):
        _settings()


def test_no_access_log_unless_asked_for_the_routers_log_each_request() -> None:
    assert _settings().accesslog is None
    for value, expected in (("true", "-"), ("false", None), ("", None)):
        with mock.patch.dict(os.environ, {"GUNICORN_ACCESS_LOG": value}):
            assert _settings().accesslog == expected, value


def test_a_bad_access_log_setting_stops_with_what_to_set() -> None:
    with (
        mock.patch.dict(os.environ, {"GUNICORN_ACCESS_LOG": "loud"}),
        pytest.raises(SystemExit, match="GUNICORN_ACCESS_LOG is 'loud': set it to true or false"),
    ):
        _settings()


def test_workers_recycle_on_memory_not_on_a_request_count_unless_asked() -> None:
    assert _settings().max_requests == 0  # the memory cap (bin/dyno) guards leaks
    with mock.patch.dict(os.environ, {"GUNICORN_MAX_REQUESTS": "5000"}):
        assert (_settings().max_requests, _settings().max_requests_jitter) == (5000, 500)
