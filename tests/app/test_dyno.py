"""The outer layer's exit status is what a platform needs (issue: two Procfile layers).

A platform restarts a dyno only when its process exits non-zero (Dokku's
on-failure policy), and sends SIGTERM before stopping it. These tests run the
real bin/dyno with Gunicorn and Celery underneath.
"""

import os
import signal
import time

import pytest

from tests.support.dyno import Dyno
from tests.support.postgres import binaries, postgres_server

pytestmark = pytest.mark.slow


@pytest.fixture
def dyno(tmp_path):
    instance = Dyno(tmp_path)
    instance.migrate()
    instance.start()
    instance.wait_healthy()
    yield instance
    instance.stop()


def test_sigterm_exits_0_after_both_inner_processes_stopped(dyno):
    inner = dyno.tree()
    job_ids = dyno.post("api/jobs/batch", {"count": 2, "io_wait_ms": 5000})["ids"]
    assert dyno.wait_jobs(job_ids, timeout=20, status="running") == ["running"] * 2
    dyno.process.send_signal(signal.SIGTERM)
    assert dyno.wait_exit() == 0, dyno.log_tail()
    assert not [pid for pid in inner if os.path.exists(f"/proc/{pid}")]
    log = dyno.log_tail(80)
    assert "Warm shutdown" in log
    assert "every process stopped gracefully" in log
    # Celery's warm shutdown let the running jobs finish.
    assert log.count("succeeded") >= len(job_ids)


@pytest.mark.parametrize(
    ("victim", "how"),
    [
        ("MainProcess", signal.SIGKILL),  # the Celery main process dies
        ("MainProcess", signal.SIGTERM),  # Celery stops on its own, with status 0
        ("gunicorn: master", signal.SIGKILL),
        ("gunicorn: master", signal.SIGTERM),  # Gunicorn stops on its own, with status 0
    ],
    ids=["celery-killed", "celery-exits-0", "gunicorn-killed", "gunicorn-exits-0"],
)
def test_any_inner_process_ending_makes_the_outer_exit_non_zero(dyno, victim, how):
    pid = dyno.inner(victim)
    os.kill(pid, how)
    status = dyno.wait_exit()
    assert status != 0, dyno.log_tail()
    assert "so the platform restarts the dyno" in dyno.log_tail()


@pytest.mark.parametrize("victim", ["gunicorn: worker", "ForkPoolWorker"])
def test_a_dead_child_is_respawned_in_place(dyno, victim):
    before = dyno.settled(victim, 2)  # WEB_CONCURRENCY and CELERY_CONCURRENCY are 2
    os.kill(before[0], signal.SIGKILL)
    dyno.wait_replaced(victim, {before[0]}, len(before))
    assert len(dyno.find(victim)) == len(before)
    assert before[0] not in dyno.find(victim)
    assert dyno.process.poll() is None
    dyno.wait_healthy(timeout=30)


def test_jobs_still_run_after_every_pool_child_was_killed(dyno):
    # One idle child always waits on the pool's task pipe. Killing it must not
    # leave the pipe unusable (billiard's plain pool shares one locked pipe: the
    # lock died with the child, and the worker never ran a job again).
    killed = dyno.settled("ForkPoolWorker", 2)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    dyno.wait_replaced("ForkPoolWorker", set(killed), 2)
    ids = dyno.post("api/jobs/batch", {"count": 10, "io_wait_ms": 10})["ids"]
    assert dyno.wait_jobs(ids, timeout=30) == ["done"] * 10, dyno.log_tail()
    # And the warm shutdown is not stuck on that pipe either.
    dyno.process.send_signal(signal.SIGTERM)
    assert dyno.wait_exit(timeout=15) == 0, dyno.log_tail()


def test_an_unknown_mode_is_refused_with_a_clear_message(tmp_path):
    instance = Dyno(tmp_path, env_extra={"DOUBLE_BOILER_MODE": "two-dynos"})
    instance.start()
    assert instance.wait_exit(timeout=20) == 2
    assert "DOUBLE_BOILER_MODE='two-dynos' is not one of: one-dyno, split" in instance.log_tail()


def test_split_mode_runs_only_the_web_process(tmp_path):
    instance = Dyno(tmp_path, env_extra={"DOUBLE_BOILER_MODE": "split"})
    instance.migrate()
    instance.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not instance.find("gunicorn: worker"):
            time.sleep(0.2)
        assert instance.find("gunicorn: master")
        assert not instance.find("celeryd")
        status, report = instance.health()
        assert status == 503 and report["failing"] == ["workers"]
    finally:
        instance.stop()


@pytest.mark.skipif(
    binaries() is None, reason="PostgreSQL is not installed (apt-get install postgresql)"
)
def test_postgresql_as_database_and_broker_runs_jobs(tmp_path):
    # On Heroku or Dokku without a Redis add-on the database is the broker too.
    with postgres_server() as database_url:
        instance = Dyno(tmp_path / "dyno", env_extra={"DATABASE_URL": database_url})
        instance.migrate()
        instance.start()
        try:
            instance.wait_healthy()
            _, report = instance.health()
            assert report["checks"]["database"]["vendor"] == "postgresql"
            assert report["checks"]["broker"]["transport"] == "dbsql"
            ids = instance.post("api/jobs/batch", {"count": 30, "io_wait_ms": 20})["ids"]
            assert instance.wait_jobs(ids) == ["done"] * 30
        finally:
            instance.stop()


def test_a_pool_child_killed_the_moment_health_turns_green_is_replaced(tmp_path):
    # Celery gives up ("Could not start worker processes", exit 1) when a pool
    # child is gone before its consumer loop starts. /healthz must therefore not
    # count a worker before that point, or a green dyno can still fall over.
    instance = Dyno(tmp_path)
    instance.migrate()
    instance.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            status, body = instance.health()
            if status == 200:
                break
            assert time.monotonic() < deadline, instance.log_tail()
            assert instance.process.poll() is None, instance.log_tail()
            time.sleep(0.02)
        [pool] = [pids["pool"] for pids in body["checks"]["workers"]["pids"].values()]
        os.kill(pool[0], signal.SIGKILL)
        instance.wait_replaced("ForkPoolWorker", {pool[0]}, 2)
        ids = instance.post("api/jobs/batch", {"count": 4, "io_wait_ms": 10})["ids"]
        assert instance.wait_jobs(ids, timeout=30) == ["done"] * 4, instance.log_tail()
        assert instance.process.poll() is None, instance.log_tail()
    finally:
        instance.stop()
