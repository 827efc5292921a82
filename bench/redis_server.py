"""A Redis for the Redis-broker runs: reuse one answering on the port, else start one."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from .procs import Process


def redis_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(port: int, workdir: Path) -> tuple[str | None, Process | None, str]:
    """(broker URL or None, the process we started or None, a note for the report)."""
    url = f"redis://127.0.0.1:{port}/0"
    if redis_answers(port):
        return url, None, f"reused the Redis answering on 127.0.0.1:{port}"
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None, "redis-server not installed (apt-get install redis-server): skipped"
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
        log_path=workdir / "redis.log",
    )  # fmt: skip
    for _ in range(100):
        if redis_answers(port):
            return url, process, f"started redis-server on 127.0.0.1:{port}"
        if not process.alive():
            break
        time.sleep(0.05)
    process.stop()
    return None, None, f"redis-server did not start on {port}: {process.log_tail(5)}"
