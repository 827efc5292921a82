"""Wait for the demo task's next scheduled tick, as /api/schedule shows it (issue 11).

Shared by the Molecule verifies of every target: each reads /api/schedule its own
way (plain HTTP, through the stand-in's router, through Dokku's nginx).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# SCHEDULE_DEMO_SECONDS defaults to 60: a tick falls due within a minute, and runs
# for SCHEDULE_DEMO_WORK_MS (a second by default).
DEMO_TICK_TIMEOUT = 130.0


def demo_runs(schedule: dict) -> list[dict]:
    return next(task for task in schedule["tasks"] if task["name"] == "demo")["last_runs"]


def next_demo_run(
    fetch_schedule: Callable[[], dict], timeout: float = DEMO_TICK_TIMEOUT
) -> tuple[dict, list[dict]]:
    """The first demo run due after this call that finished ok, and the runs then listed.

    Fails if none comes within `timeout`, or if any due time is listed twice (one
    Tick row per due time: a second dispatch of a tick would be a second row).
    """
    before = {run["due_at"] for run in demo_runs(fetch_schedule())}
    deadline = time.monotonic() + timeout
    new: list[dict] = []
    while time.monotonic() < deadline:
        runs = demo_runs(fetch_schedule())
        new = [run for run in runs if run["due_at"] not in before and run["outcome"] == "ok"]
        if new:
            break
        time.sleep(2)
    assert new, f"no new demo tick in {timeout:.0f} s; last runs: {runs}"
    due_times = [run["due_at"] for run in runs]
    assert len(due_times) == len(set(due_times)), runs
    assert new[-1]["runs"] == 1 and new[-1]["dispatches"] == 1, new[-1]
    return new[-1], runs
