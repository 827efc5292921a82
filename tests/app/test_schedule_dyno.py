"""The beat embedded in the dyno's Celery worker: it runs, and its death restarts the dyno."""

import os
import signal
import time

import pytest

from tests.support.dyno import Dyno

pytestmark = pytest.mark.slow

BEAT = "[celery beat]"


def demo_runs(dyno: Dyno) -> list[dict]:
    tasks = dyno.get("api/schedule?runs=50")["tasks"]
    return next(task for task in tasks if task["name"] == "demo")["last_runs"]


def wait_for_new_run(dyno: Dyno, seen: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in demo_runs(dyno) if r["due_at"] not in seen and r["outcome"] == "ok"]
        if new:
            return new[0]
        time.sleep(0.5)
    raise AssertionError(f"no new demo run in {timeout}s:\n{dyno.log_tail()}")


def test_a_killed_beat_stops_the_worker_so_the_dyno_restarts(tmp_path):
    dyno = Dyno(tmp_path, env_extra={"SCHEDULE_DEMO_SECONDS": "2", "SCHEDULE_DEMO_WORK_MS": "10"})
    dyno.migrate()
    dyno.start()
    try:
        dyno.wait_healthy()
        (beat,) = dyno.settled(BEAT, 1)
        first = wait_for_new_run(dyno, set())
        assert first["dispatched_by"]["pid"] == beat
        os.kill(beat, signal.SIGKILL)
        status = dyno.wait_exit(timeout=40)
        assert status != 0, dyno.log_tail()
        log = dyno.log_tail(200)
        assert f"embedded beat (pid {beat}) died" in log
        assert "so the platform restarts the dyno" in log
    finally:
        dyno.stop()


def test_schedule_beat_off_runs_no_beat(tmp_path):
    dyno = Dyno(tmp_path, env_extra={"SCHEDULE_BEAT": "false"})
    dyno.migrate()
    dyno.start()
    try:
        dyno.wait_healthy()
        assert dyno.find(BEAT) == []
        status, report = dyno.health()
        assert status == 200 and "dispatch_due_ticks" in report["checks"]["scheduler"]["note"]
    finally:
        dyno.stop()
