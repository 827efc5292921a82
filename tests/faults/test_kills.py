"""Crash recovery: kill -9 each inner process, again and again.

A dead child (a Gunicorn worker, a Celery pool child) is respawned in place by
its master. A dead master (Gunicorn's, or Celery's main process) makes the
outer process exit non-zero, and the platform restarts the dyno: this test
plays the platform, with Dokku's on-failure policy (restart at once).
"""

import os
import signal
import statistics
import time

import pytest

from tests.support.dyno import Dyno

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("FAULT_KILLS", "10"))
JOBS_AFTER = 10
VICTIMS = {
    "gunicorn worker": ("gunicorn: worker", 2),
    "celery pool child": ("ForkPoolWorker", 2),
    "gunicorn master": ("gunicorn: master", 1),
    "celery main process": ("MainProcess", 1),
}


def test_every_inner_process_can_die_and_the_dyno_recovers(tmp_path, figures):
    dyno = Dyno(tmp_path)
    dyno.migrate()
    dyno.start()
    dyno.wait_healthy()
    rows, restarts = [], 0
    try:
        for name, (marker, count) in VICTIMS.items():
            times, exits = [], set()
            for _ in range(KILLS):
                # A master is the one process with its title whose parent has
                # another; children are picked once the pool is full again.
                victim = dyno.inner(marker) if count == 1 else dyno.settled(marker, count)[0]
                killed = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                if count == 1:
                    # A master died: the outer process must exit non-zero.
                    status = dyno.wait_exit(timeout=40)
                    exits.add(status)
                    assert status != 0, dyno.log_tail()
                    dyno = Dyno(tmp_path, port=dyno.port, secret=dyno.secret).start()
                    restarts += 1
                    dyno.wait_healthy()
                else:
                    assert dyno.process.poll() is None
                    dyno.wait_replaced(marker, {victim}, count, timeout=60)
                    dyno.wait_healthy(timeout=60)
                times.append(time.monotonic() - killed)
            # Recovered means jobs run again, not only a green /healthz.
            started = time.monotonic()
            ids = dyno.post("api/jobs/batch", {"count": JOBS_AFTER, "io_wait_ms": 10})["ids"]
            statuses = dyno.wait_jobs(ids, timeout=30)
            assert statuses == ["done"] * JOBS_AFTER, f"{name}: {statuses}\n{dyno.log_tail()}"
            ran_in = time.monotonic() - started
            how = f"dyno restarted, outer exit {sorted(exits)}" if exits else "respawned in place"
            rows.append(
                f"{name:20} {KILLS} kills, {KILLS} recovered ({how}); /healthz green again "
                f"after p50 {statistics.median(times):.1f} s, max {max(times):.1f} s; "
                f"then {JOBS_AFTER} jobs done in {ran_in:.1f} s"
            )
    finally:
        dyno.stop()
    figures["kills"] = rows
    log = (tmp_path / "dyno.log").read_text(errors="replace")
    assert log.count(dyno.secret) == 0
