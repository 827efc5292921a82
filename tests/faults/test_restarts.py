"""No job lost, none completed twice, across dyno restarts (SIGTERM and SIGKILL).

Platforms restart dynos routinely: SIGTERM to every process, SIGKILL 30 s
later, or straight SIGKILL when a dyno dies. This test does that to a real
bin/dyno three times while 500 jobs run, on the same database (the broker).
"""

import contextlib
import os
import re
import signal
import time

import pytest

from tests.support.dyno import Dyno, processes

pytestmark = pytest.mark.slow

JOBS = int(os.environ.get("FAULT_JOBS", "500"))
# Each cycle restarts the dyno three times: SIGTERM, SIGKILL, SIGTERM. More cycles
# (with more jobs, so some still wait) look for rarer shutdown races.
CYCLES = int(os.environ.get("FAULT_RESTART_CYCLES", "1"))
# Jobs whose message died with a SIGKILLed dyno are sent again after this long
# (60 s by default; shorter here to keep the test brisk).
# One client sends all the jobs here: let it use both children, as before the
# per-client bound (the abuse suite covers that bound).
# The backlog bounds (the abuse suite's subject) are opened up to the suite's job count.
ENV = {
    "JOBS_REQUEUE_AFTER_SECONDS": "20",
    "JOBS_CLIENT_MAX_RUNNING": "2",
    "JOBS_CLIENT_MAX_BACKLOG": str(max(1000, JOBS)),
    "JOBS_MAX_BACKLOG": str(max(5000, JOBS)),
    "JOBS_CLIENT_MAX_BACKLOG_SECONDS": "3600",
    "JOBS_MAX_BACKLOG_SECONDS": "3600",
}


def kill_everything(dyno: Dyno) -> None:
    """A dyno dying without grace: SIGKILL to every process at once."""
    for pid in [dyno.process.pid, *dyno.tree()]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    dyno.process.wait(timeout=10)


def counts(dyno: Dyno, ids: list[int]) -> dict[str, int]:
    answer = dyno.get("api/jobs?ids=" + ",".join(map(str, ids)))
    found = {}
    for job in answer["jobs"]:
        found[job["status"]] = found.get(job["status"], 0) + 1
    return found


def test_restarts_lose_no_job_and_complete_none_twice(tmp_path, figures):
    dyno = Dyno(tmp_path, env_extra=ENV)
    dyno.migrate()
    dyno.start()
    dyno.wait_healthy()
    ids: list[int] = []
    for _ in range(JOBS // 100):
        ids += dyno.post("api/jobs/batch", {"count": 100, "io_wait_ms": 250})["ids"]
    assert len(ids) == JOBS

    restarts, argument_hits = [], 0
    for how in ("SIGTERM", "SIGKILL", "SIGTERM") * CYCLES:
        time.sleep(2.5)  # let some jobs run, some wait
        argument_hits += sum(dyno.secret in args for _, args in processes().values())
        before = counts(dyno, ids)
        started = time.monotonic()
        if how == "SIGTERM":
            dyno.process.send_signal(signal.SIGTERM)
            status = dyno.wait_exit(timeout=35)
            assert status == 0, dyno.log_tail()
        else:
            kill_everything(dyno)
        dyno = Dyno(tmp_path, env_extra=ENV, port=dyno.port, secret=dyno.secret)
        dyno.start()
        dyno.wait_healthy()
        restarts.append(
            f"{how}: {before.get('done', 0)} done before, healthy again after "
            f"{time.monotonic() - started:.1f} s"
        )

    # 250 ms each on two children, with room to spare
    deadline = time.monotonic() + max(180, JOBS * 0.25)
    while time.monotonic() < deadline and counts(dyno, ids).get("done", 0) < JOBS:
        time.sleep(1)
    final = counts(dyno, ids)
    answer = dyno.get("api/jobs?ids=" + ",".join(map(str, ids)))
    dyno.stop()

    log = (tmp_path / "dyno.log").read_text(errors="replace")
    completions = len(re.findall(r"succeeded in [0-9.]+s: 'done'", log))
    duplicates = len(re.findall(r"succeeded in [0-9.]+s: 'already finished'", log))
    superseded = len(re.findall(r"succeeded in [0-9.]+s: 'superseded'", log))
    redelivered = sum(1 for job in answer["jobs"] if job["attempts"] > 1)
    figures["restarts"] = restarts
    figures["jobs"] = (
        f"{JOBS} submitted, {final.get('done', 0)} done, {JOBS - final.get('done', 0)} lost, "
        f"{completions - final.get('done', 0)} completed twice; {redelivered} run again after "
        f"a restart, {duplicates} duplicate deliveries dropped, {superseded} superseded claims"
    )
    assert final == {"done": JOBS}, final
    assert completions == JOBS  # each job's result recorded exactly once
    figures["secret"] = (
        f"searched in {len(log)} characters of dyno log and in every process's arguments "
        f"at 3 moments: {secret_hits(log, dyno.secret) + argument_hits} hits"
    )
    assert secret_hits(log, dyno.secret) == 0
    assert argument_hits == 0


def secret_hits(text: str, secret: str) -> int:
    return text.count(secret)
