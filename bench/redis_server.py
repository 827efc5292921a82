"""A private Redis for the Redis-broker runs.

Every benchmark run starts its own redis-server on the first free port from
6380 up: the app's queue is always named `celery`, so two runs (or a CI smoke
next to a full run) sharing one Redis would steal each other's messages.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from .procs import Process

PORTS = range(6380, 6400)


def redis_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_redis(workdir: Path) -> tuple[str | None, Process | None, str]:
    """(broker URL or None, the process, a note for the report)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None, "redis-server not installed (apt-get install redis-server): skipped"
    for port in PORTS:
        if not _port_free(port):
            continue
        process = Process(
            "redis",
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
            ],
            env={"PATH": "/usr/bin:/bin"},
            cwd=workdir,
            log_path=workdir / f"redis-{port}.log",
        )  # fmt: skip
        for _ in range(100):
            if redis_answers(port):
                return f"redis://127.0.0.1:{port}/0", process, f"own redis-server on :{port}"
            if not process.alive():
                break
            time.sleep(0.05)
        process.stop()  # lost a race for the port, or cannot start: try the next one
    return None, None, f"could not start redis-server on any port {PORTS.start}-{PORTS.stop - 1}"
