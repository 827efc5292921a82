"""Settings come from the environment and are production-safe by default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


def django(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=APP,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_a_secret_key():
    result = django("check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "token_urlsafe" in result.stderr  # it says how to make one


def test_debug_mode_runs_without_a_secret_for_development():
    assert django("check", DEBUG="true").returncode == 0


def test_check_deploy_is_clean_with_production_settings():
    result = django(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY="k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="example.herokuapp.com",
        DATABASE_URL="postgres://u:p@db.example:5432/app",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "transport", "url"),
    [
        ({}, "doubleboiler.broker:DatabaseTransport", "sqlite:///"),
        (
            {"DATABASE_URL": "postgres://u:p@h:5432/d"},
            "doubleboiler.broker:DatabaseTransport",
            "postgresql+psycopg://u:p@h:5432/d",
        ),
        ({"REDIS_URL": "redis://r:6379/0"}, "kombu.transport.redis:Transport", "redis://r:6379/0"),
        (
            {"REDIS_URL": "redis://r:6379/0", "CELERY_BROKER_URL": "amqp://q//"},
            "kombu.transport.pyamqp:Transport",
            "amqp://",
        ),
        # issue 10 item 4: a Redis add-on still attached does not win over the choice
        (
            {
                "DOUBLE_BOILER_BROKER": "database",
                "REDIS_URL": "redis://r:6379/0",
                "DATABASE_URL": "postgres://u:p@h:5432/d",
            },
            "doubleboiler.broker:DatabaseTransport",
            "postgresql+psycopg://u:p@h:5432/d",
        ),
        (
            {"DOUBLE_BOILER_BROKER": "redis", "REDIS_URL": "redis://r:6379/0"},
            "kombu.transport.redis:Transport",
            "redis://r:6379/0",
        ),
    ],
)
def test_broker_follows_the_environment(env, transport, url):
    # What kombu itself makes of the URL: the transport class and its address.
    code = (
        "from doubleboiler.celery import app; c = app.connection_for_write(); "
        "t = type(c.transport); "
        "print(f'{t.__module__}:{t.__name__}', "
        "c.hostname if t.__name__ == 'DatabaseTransport' else c.as_uri(include_password=True))"
    )
    result = django("shell", "-c", code, DEBUG="true", **env)
    assert result.returncode == 0, result.stderr
    got_transport, _, got_url = result.stdout.strip().splitlines()[-1].partition(" ")
    assert got_transport == transport
    assert got_url.startswith(url)


def test_a_database_that_cannot_be_a_broker_is_a_clear_error():
    result = django("check", DEBUG="true", DATABASE_URL="mysql://u:p@h/d")
    assert result.returncode != 0
    assert "set CELERY_BROKER_URL or REDIS_URL" in result.stderr


def test_a_bad_boolean_is_a_clear_error():
    result = django("check", DEBUG="maybe")
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_redis_as_the_broker_without_a_redis_url_is_a_clear_error():
    result = django("check", DEBUG="true", DOUBLE_BOILER_BROKER="redis")
    assert result.returncode != 0
    assert "DOUBLE_BOILER_BROKER=redis but neither" in result.stderr


def _celery_conf(code: str, **env: str) -> str:
    result = django(
        "shell", "-c", "from doubleboiler.celery import app; " + code, DEBUG="true", **env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_connection_budgets_reach_celery_and_kombu():
    # issue 10 item 3: the pool sizes the deploy role computes from the plans
    assert _celery_conf("print(app.conf.broker_pool_limit)") == "10"  # Celery's default
    limit = _celery_conf(
        "print(app.conf.broker_pool_limit)",
        CELERY_BROKER_POOL_LIMIT="2",
        REDIS_URL="redis://r:6379/0",
    )
    assert limit == "2"
    options = _celery_conf(
        "print(sorted(app.conf.broker_transport_options.items()))",
        BROKER_DATABASE_POOL_SIZE="1",
        DATABASE_URL="postgres://u:p@h:5432/d",
    )
    assert options == "[('max_overflow', 0), ('pool_size', 1)]"


def test_own_addresses_are_allowed_only_when_asked():
    """Issue 9 #3: with no domain Dokku's checks reach the container by its address."""
    code = (
        "import socket; from django.conf import settings; "
        "own = socket.gethostbyname_ex(socket.gethostname())[2]; "
        "print(set(own) <= set(settings.ALLOWED_HOSTS))"
    )
    asked = django("shell", "-c", code, DEBUG="true", ALLOWED_HOSTS_OWN_ADDRESSES="true")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip().splitlines()[-1] == "True"
    default = django("shell", "-c", code, DEBUG="true", ALLOWED_HOSTS="app.example.org")
    assert default.stdout.strip().splitlines()[-1] == "False"


def test_auto_counts_load_outside_the_dyno_and_a_bad_one_is_a_clear_error():
    # The release phase sees the config vars as the roles set them: `auto` for bin/dyno.
    concurrency = "print(app.conf.worker_concurrency)"
    assert _celery_conf(concurrency, CELERY_CONCURRENCY="auto") == "2"
    assert _celery_conf(concurrency, CELERY_CONCURRENCY="5") == "5"
    result = django("check", DEBUG="true", CELERY_CONCURRENCY="lots")
    assert result.returncode != 0
    assert "CELERY_CONCURRENCY='lots' is not a whole number." in result.stderr
