"""Where a dyno's time goes: py-spy samples of every process, sorted into stages.

py-spy (PyPI, a sampling profiler that reads another process's Python stacks)
records the dyno's whole tree during one jobs run; each sample is one stack of
one process while it ran (idle threads are left out). A sample is put in the
first stage of its process's list whose marker appears in the stack, so a SQL
statement run by the job's claim counts as "claim and finish", not as plain SQL.
The shares are of all samples, so they say where the two cores went.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# The tooling virtualenv's py-spy, else one on PATH.
PY_SPY = shutil.which(
    "py-spy", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)

PROCESS = re.compile(r'process \d+:"([^"]*)"')
# (role, marker in the process title), first match wins.
ROLES = [
    ("web worker", "gunicorn: worker"),
    ("web master", "gunicorn: master"),
    ("Celery child", "ForkPoolWorker"),
    ("Celery beat", "celery beat"),
    ("Celery main", "MainProcess"),
]
# role -> [(stage, markers in the stack)], first match wins; the rest is the last stage.
STAGES = {
    "web worker": [
        ("admission (limits, backlog counts)", ["(jobs/admission.py"]),
        ("broker publish", ["(kombu/messaging.py", "(celery/app/amqp.py", "apply_async ("]),
        ("ORM and SQL (insert, reads)", ["(django/db/"]),
        ("Django request handling (middleware, view, JSON)", ["(django/", "(whitenoise/"]),
        ("HTTP server (Gunicorn, gevent)", []),
    ],
    "Celery child": [
        ("job claim and finish (ORM and SQL)", ["(jobs/tasks.py"]),
        ("Celery per-task work (trace, signals, ack)", ["(celery/", "(kombu/"]),
        ("billiard child loop (pipe I/O)", []),
    ],
    "Celery main": [
        (
            "broker consume (fetch, ack, SQL or Redis)",
            ["(kombu/transport", "(redis/", "(sqlalchemy/"],
        ),
        ("heartbeat and requeue sweep", ["(jobs/worker.py"]),
        ("pool dispatch (billiard, event loop)", []),
    ],
}


def have_py_spy() -> bool:
    return PY_SPY is not None


def start_recording(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen:
    """Sample the tree under pid for `seconds` into a raw (collapsed stacks) file."""
    return subprocess.Popen(
        [PY_SPY, "record", "--pid", str(pid), "--subprocesses", "--duration",
         str(max(1, round(seconds))), "--rate", str(rate), "--format", "raw",
         "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def classify(raw: str) -> dict:
    """{"samples": N, "stages": [{"role", "stage", "samples", "share"}...]} from raw stacks."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        titles = PROCESS.findall(stack)
        title = titles[-1] if titles else ""
        role = next((name for name, marker in ROLES if marker in title), "bin/dyno (honcho)")
        stage = role
        for name, markers in STAGES.get(role, []):
            if not markers or any(marker in stack for marker in markers):
                stage = name
                break
        counts[(role, stage)] += int(number)
    total = sum(counts.values())
    stages = [
        {"role": role, "stage": stage, "samples": n, "share": n / total if total else 0.0}
        for (role, stage), n in counts.most_common()
    ]
    return {"samples": total, "stages": stages}
