"""A throwaway Redis server for tests: the benchmark's private one (bench/redis_server.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.redis_server import start_redis


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield a redis:// URL for a fresh server with no persistence; stop it after."""
    with tempfile.TemporaryDirectory(prefix="double-boiler-redis-") as workdir:
        url, process, note = start_redis(Path(workdir))
        if url is None or process is None:
            raise RuntimeError(note)
        try:
            yield url
        finally:
            process.stop()
