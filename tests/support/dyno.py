"""Start the real outer process (bin/dyno) on loopback for tests and fault runs."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) for every process, read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry)] = (ppid, args)
    return found


def descendants(pid: int) -> dict[int, tuple[int, str]]:
    table = processes()
    found, queue = {}, [pid]
    while queue:
        parent = queue.pop()
        for child, (ppid, args) in table.items():
            if ppid == parent and child not in found:
                found[child] = (ppid, args)
                queue.append(child)
    return found


@dataclass
class Dyno:
    """One outer process with its own SQLite database (the database broker)."""

    workdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dyno.log"

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SECRET_KEY": self.secret,
            "DJANGO_HTTPS_ONLY": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{self.workdir / 'db.sqlite3'}",
            "PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "WEB_CONCURRENCY": "2",
            "CELERY_CONCURRENCY": "2",
            **self.env_extra,
        }

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "app/manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> Dyno:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "bin/dyno"],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def health(self, timeout: float = 3.0) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + "healthz", timeout=timeout) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)
        except (OSError, ValueError):
            return 0, {}

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Seconds until /healthz is green; raises with the log tail if it never is."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process and self.process.poll() is not None:
                raise AssertionError(f"dyno exited ({self.process.returncode}):\n{self.log_tail()}")
            if self.health()[0] == 200:
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"/healthz not green after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def tree(self) -> dict[int, tuple[int, str]]:
        return descendants(self.process.pid) if self.process else {}

    def find(self, marker: str) -> list[int]:
        return sorted(pid for pid, (_, args) in self.tree().items() if marker in args)

    def inner(self, marker: str, timeout: float = 30.0) -> int:
        """The pid of the one inner process carrying `marker` whose parent does not.

        A pool child forked a moment ago still shows its parent's title, so a
        plain `find` can see two "MainProcess"; the real one is not the child
        of another.
        """
        deadline = time.monotonic() + timeout
        while True:
            tree = self.tree()
            found = [
                pid
                for pid, (ppid, args) in tree.items()
                if marker in args and marker not in tree.get(ppid, (0, ""))[1]
            ]
            if len(found) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if len(found) != 1:
            raise AssertionError(
                f"expected one inner {marker!r}, found {found}:\n{self.log_tail()}"
            )
        return found[0]

    def settled(self, marker: str, count: int, timeout: float = 30.0) -> list[int]:
        """The pids carrying `marker`, once there are `count` of them (forks settle)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(marker)
            if len(found) == count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"expected {count} x {marker!r}, found {self.find(marker)}")

    def wait_replaced(self, marker: str, gone: set[int], count: int, timeout: float = 30.0) -> None:
        """Wait until `count` processes carry `marker` again, none of them in `gone`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(marker)
            if len(found) == count and not gone & set(found):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{marker!r} not replaced after {timeout}s (found {found}):\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.load(response)

    def wait_jobs(self, ids: list[int], timeout: float = 60.0, status: str = "done") -> list[str]:
        """The jobs' statuses once all have `status`, or when the timeout runs out."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.get("api/jobs?ids=" + ",".join(map(str, ids)))["jobs"]
            statuses = [job["status"] for job in jobs]
            if set(statuses) == {status} or time.monotonic() > deadline:
                return statuses
            time.sleep(0.2)

    def wait_exit(self, timeout: float = 40.0) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for anything of ours left: never leak processes."""
        if not self.process:
            return
        tree = self.tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
