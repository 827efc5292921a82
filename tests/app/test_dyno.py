"""The outer layer's exit status is what a platform needs (issue: two Procfile layers).

A platform restarts a dyno only when its process exits non-zero (Dokku's
on-failure policy), and sends SIGTERM before stopping it. These tests run the
real bin/dyno with Gunicorn and Celery underneath.
"""

import importlib.machinery
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest
from honcho.printer import Printer

from tests.support.dyno import ROOT, Dyno
from tests.support.postgres import binaries, postgres_server

pytestmark = pytest.mark.slow


@pytest.fixture
def dyno(tmp_path):
    # These tests are about the processes: one client may use both children.
    instance = Dyno(tmp_path, env_extra={"JOBS_CLIENT_MAX_RUNNING": "2"})
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


def test_a_process_stuck_past_the_grace_period_is_asked_for_its_stacks_then_killed(tmp_path):
    # bin/dyno reads the LocalProcfile beside its own folder: a tree of its own here,
    # with one process that ignores SIGTERM and answers SIGUSR1 as Celery's main does.
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / "bin" / "dyno", tmp_path / "bin" / "dyno")
    stuck = (
        "import signal, sys, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGUSR1, lambda *_: print('stack: waiting in sleep', flush=True)); "
        "print('ready', flush=True); time.sleep(120)"
    )
    (tmp_path / "LocalProcfile").write_text(f'stuck: exec {sys.executable} -c "{stuck}"\n')
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "bin" / "dyno")],
        env={**os.environ, "DYNO_GRACE_SECONDS": "3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline and not any("ready" in line for line in lines):
        lines.append(process.stdout.readline())
    process.send_signal(signal.SIGTERM)
    output = "".join(lines) + process.communicate(timeout=30)[0]
    assert process.returncode == 1, output
    asked = output.index("asking for stack traces (SIGUSR1), then SIGKILL")
    assert output.index("stack: waiting in sleep") > asked, output
    assert "stuck did not stop gracefully" in output


def test_a_system_line_that_would_print_reentrantly_still_comes_out(capfd):
    # Honcho prints "SIGTERM received" from its signal handler; when the signal lands while
    # the printer writes a line, Python refuses the nested print with this RuntimeError.
    loader = importlib.machinery.SourceFileLoader("bin_dyno", str(ROOT / "bin" / "dyno"))
    module = types.ModuleType(loader.name)
    module.__file__ = loader.path
    loader.exec_module(module)
    manager = module.DynoManager(Printer(sys.stdout, colour=False))

    def reentrant(message):
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stdout>'>")

    manager._printer.write = reentrant
    manager._system_print("SIGTERM received\n")
    assert "system | SIGTERM received\n" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("worker_class", "reported"), [("sync", "SyncWorker"), ("gthread", "ThreadWorker")]
)
def test_the_worker_class_opt_out_serves_and_runs_jobs(tmp_path, worker_class, reported):
    """GUNICORN_WORKER_CLASS: the way out for packages that do not agree with gevent."""
    dyno = Dyno(tmp_path, env_extra={"GUNICORN_WORKER_CLASS": worker_class})
    dyno.migrate()
    dyno.start()
    try:
        dyno.wait_healthy()
        _, report = dyno.health()
        web = report["checks"]["web"]
        assert web["worker_class"].endswith(reported), web
        assert web["gevent_patched"] is False
        ids = dyno.post("api/jobs/batch", {"count": 4, "io_wait_ms": 10})["ids"]
        assert dyno.wait_jobs(ids, timeout=30) == ["done"] * 4
    finally:
        dyno.stop()


def test_after_sigterm_web_keeps_serving_for_the_drain_while_celery_stops(tmp_path):
    """DYNO_DRAIN_SECONDS: what Dokku's SIGTERM right after its nginx reload needs."""
    drain = 10  # long enough for Celery's warm shutdown on a busy CI machine
    dyno = Dyno(tmp_path, env_extra={"DYNO_DRAIN_SECONDS": str(drain)})
    dyno.migrate()
    dyno.start()
    try:
        dyno.wait_healthy()
        celery_main = dyno.inner("MainProcess")
        dyno.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        answers = []
        while os.path.exists(f"/proc/{celery_main}") and time.monotonic() - signalled < drain - 1:
            answers.append(dyno.health(timeout=2)[0])  # 503 once Celery is gone
            time.sleep(0.1)
        celery_stopped_after = time.monotonic() - signalled
        assert not os.path.exists(f"/proc/{celery_main}"), "Celery outlived the drain"
        answers.append(dyno.health(timeout=2)[0])  # web still serves with Celery gone
        assert 0 not in answers, answers  # every request answered
        assert dyno.wait_exit() == 0, dyno.log_tail()
        assert time.monotonic() - signalled >= drain, celery_stopped_after
        assert f"web keeps serving {drain} s more (DYNO_DRAIN_SECONDS)" in dyno.log_tail(80)
    finally:
        dyno.stop()


@pytest.mark.parametrize(("value", "problem"), [("soon", "a whole number"), ("30", "from 0 to 23")])
def test_a_bad_drain_is_refused_with_what_to_set(tmp_path, value, problem):
    dyno = Dyno(tmp_path, env_extra={"DYNO_DRAIN_SECONDS": value})
    dyno.start()
    assert dyno.wait_exit(timeout=20) == 2
    assert f"DYNO_DRAIN_SECONDS must be {problem}" in dyno.log_tail()
