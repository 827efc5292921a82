"""Private instances of the app: a temp SQLite database, a free port, one server.

Used by the benchmark (dynos with either broker, and the three web servers it
compares) and by the browser test (one dyno). Every instance gets the
environment a plain-HTTP local deployment gets (docs/architecture.md) and
nothing inherited that would point it at someone else's database or broker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Process, free_port

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
BIN_DIR = Path(sys.executable).parent

# Config the app reads that must not leak in from the caller's environment (a
# shell, or pytest-django, which exports its own settings module and database).
APP_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "PYTHONPATH",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DEBUG",
    "DOUBLE_BOILER_MODE",
    "WEB_CONCURRENCY",
    "CELERY_CONCURRENCY",
    "PORT",
    "BIND_HOST",
    "ALLOWED_HOSTS",
    "DJANGO_SECRET_KEY",
    "DJANGO_HTTPS_ONLY",
    "BENCH_UPSTREAM_URL",
}


@dataclass
class AppInstance:
    """One database and the servers started on it."""

    label: str
    broker_url: str | None = None
    web_concurrency: int = 2
    celery_concurrency: int = 2
    extra_env: Mapping[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    database_url: str | None = None  # default: a SQLite file in the workdir

    def __post_init__(self) -> None:
        self._own_workdir = self.workdir is None
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"double-boiler-{self.label}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = self.database_url or f"sqlite:///{self.workdir / 'db.sqlite3'}"
        self.secret = secrets.token_urlsafe(40)
        self.processes: list[Process] = []

    def env(self, port: int, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
        env.update(
            PATH=f"{BIN_DIR}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            DJANGO_SECRET_KEY=self.secret,
            DJANGO_HTTPS_ONLY="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PORT=str(port),
            BIND_HOST="127.0.0.1",
            DATABASE_URL=self.database_url,
            WEB_CONCURRENCY=str(self.web_concurrency),
            CELERY_CONCURRENCY=str(self.celery_concurrency),
            PYTHONUNBUFFERED="1",
        )
        if self.broker_url:
            env["CELERY_BROKER_URL"] = self.broker_url
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def manage(self, *args: str) -> None:
        env = self.env(0)
        result = subprocess.run(
            [sys.executable, str(APP_DIR / "manage.py"), *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )

    def prepare(self, collectstatic: bool = True) -> AppInstance:
        """Migrate the database (and collect static files, as a build would)."""
        self.manage("migrate", "--noinput", "-v", "0")
        if collectstatic:
            self.manage("collectstatic", "--noinput", "-v", "0")
        return self

    def start(self, name: str, argv: list[str], port: int | None = None, **env: str) -> Server:
        """Start a server; "{port}" in argv becomes the port it gets."""
        port = port or free_port()
        log = self.workdir / f"{name}.log"
        argv = [arg.replace("{port}", str(port)) for arg in argv]
        process = Process(name, argv, self.env(port, **env), ROOT, log)
        self.processes.append(process)
        return Server(name, process, port)

    def start_dyno(self, name: str = "dyno", port: int | None = None, **env: str) -> Server:
        """The real thing: bin/dyno (honcho) running LocalProcfile's web and worker."""
        return self.start(name, [sys.executable, str(ROOT / "bin" / "dyno")], port, **env)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def cleanup(self) -> None:
        self.stop()
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Server:
    name: str
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, path: str = "/healthz", timeout: float = 60.0) -> float:
        return self.process.wait_http(self.url + path, timeout)

    def stop(self) -> int | None:
        return self.process.stop()
