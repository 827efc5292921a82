"""Bare Celery's ceiling: what the broker and Celery alone do with an empty task.

The jobs section measures the app's whole pipeline (HTTP, ORM, broker publish,
Celery, the claim and finish updates). This is the same Celery, broker and
settings as the dyno's worker (2 children, late acknowledgement, prefetch 1,
no results, the app's database transport for the database broker) and nothing
else: a task that only counts itself. The pipeline's jobs/s as a share of this
says how much of Celery's own rate the app keeps.

    python -m bench.ceiling redis://127.0.0.1:6380/0 --tasks 2000
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from celery import Celery

from .app import ROOT
from .procs import Process

# The app's database transport (doubleboiler/broker.py) registers its alias on import.
# Loaded from its file alone: importing the doubleboiler package would load the app's
# Celery app and Django settings, which a bare worker must not have.
_spec = importlib.util.spec_from_file_location(
    "ceiling_database_broker", ROOT / "app" / "doubleboiler" / "broker.py"
)
database_broker = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = database_broker
_spec.loader.exec_module(database_broker)
database_broker_url = database_broker.broker_url

COUNT_DIR = os.environ.get("CEILING_COUNT_DIR", "")

app = Celery("ceiling")
app.conf.update(
    broker_url=os.environ.get("CEILING_BROKER_URL", "memory://"),
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_counter: int | None = None


@app.task(name="ceiling.empty")
def empty() -> None:
    """Count one task done: one byte appended to this child's own file."""
    global _counter
    if _counter is None:
        _counter = os.open(
            Path(COUNT_DIR) / str(os.getpid()), os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
    os.write(_counter, b"x")


def done(count_dir: Path) -> int:
    return sum(path.stat().st_size for path in count_dir.iterdir())


def sqlite_in_wal_mode(broker: str) -> None:
    """The app's database file is in WAL mode (its Django settings set it, and WAL stays
    with the file); the broker's own connections then use it as they do in the dyno."""
    prefix = f"{database_broker.TRANSPORT_ALIAS}+sqlite:///"
    if broker.startswith(prefix):
        with contextlib.closing(sqlite3.connect(broker.removeprefix(prefix))) as db:
            db.execute("PRAGMA journal_mode=WAL")


def run_ceiling(
    broker: str, tasks: int, concurrency: int, work: Path, timeout: float = 300.0
) -> dict:
    """Queue `tasks` empty tasks, start a bare worker, time it draining them."""
    count_dir = work / f"ceiling-{os.getpid()}-{time.monotonic_ns()}"
    count_dir.mkdir(parents=True)
    sqlite_in_wal_mode(broker)
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "CEILING_BROKER_URL": broker,
        "CEILING_COUNT_DIR": str(count_dir),
        "PYTHONPATH": str(ROOT),
    }
    worker_argv = [
        sys.executable, "-m", "celery", "--app", "bench.ceiling", "worker", "--concurrency",
        str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip
    # The backlog first, the worker after: what is timed is Celery and the broker
    # draining it, from the first task done to the last, not the producer or start-up.
    # A connection of its own: the app's pool may still hold an earlier broker's.
    started = time.perf_counter()
    with app.connection_for_write(broker) as connection, connection.Producer() as producer:
        for _ in range(tasks):
            empty.apply_async(producer=producer)
    sent = time.perf_counter()
    worker = Process("ceiling-worker", worker_argv, env, ROOT, work / "ceiling-worker.log")
    try:
        deadline = time.monotonic() + 90
        while (first := done(count_dir)) < 1:
            if time.monotonic() > deadline or not worker.alive():
                raise RuntimeError(f"the ceiling worker did not start:\n{worker.log_tail()}")
            time.sleep(0.002)
        first_done = time.perf_counter()
        deadline = time.monotonic() + timeout
        while done(count_dir) < tasks:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{done(count_dir)} of {tasks} ceiling tasks done in time")
            time.sleep(0.002)
        finished = time.perf_counter()
    finally:
        worker.stop()
    return {
        "tasks": tasks,
        "concurrency": concurrency,
        "tasks_per_s": (tasks - first) / (finished - first_done),
        "sent_per_s": tasks / (sent - started),
        "drain_seconds": finished - first_done,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument(
        "broker", help="a Redis URL, or a database URL (sqlite:///..., postgres://...)"
    )
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    broker = args.broker
    if not broker.startswith("redis"):
        broker = database_broker_url(broker)
    with tempfile.TemporaryDirectory(prefix="double-boiler-ceiling-") as work:
        result = run_ceiling(broker, args.tasks, args.concurrency, Path(work))
    print(f"{result['tasks_per_s']:,.0f} tasks/s done ({result['sent_per_s']:,.0f}/s sent)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
