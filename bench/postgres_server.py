"""A private PostgreSQL server on loopback, from Debian's postgresql package.

The benchmark measures the jobs pipeline on PostgreSQL (what Heroku and Dokku run)
with one of these; the tests use it too (tests/support/postgres.py).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .procs import free_port

READY_TIMEOUT_SECONDS = 20


def binaries() -> Path | None:
    """The newest installed server's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a fresh server's `postgres` database; stop it and remove its files after."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    # Its own folder under /tmp: the server runs as `postgres` when we are root, and
    # that user cannot enter root's private folders.
    workdir = Path(tempfile.mkdtemp(prefix="double-boiler-pg-"))
    data = workdir / "pgdata"
    data.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(
        str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "pg.log"), "-w", "start",
        "-o", f"-h 127.0.0.1 -p {port} -k {workdir}",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new database on the server at server_url; its URL."""
    bin_dir = binaries()
    parts = urlsplit(server_url)
    subprocess.run(
        [str(bin_dir / "createdb"), "-h", parts.hostname, "-p", str(parts.port), "-U",
         parts.username, name],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return urlunsplit(parts._replace(path=f"/{name}"))
