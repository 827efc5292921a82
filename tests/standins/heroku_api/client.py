"""Small helpers the tests use to drive and inspect a running stand-in.

Not a Heroku client for the project (the role has its own): this only speaks
the stand-in's admin endpoints and makes plain API calls in tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCEPT = "application/vnd.heroku+json; version=3"
REPO_ROOT = Path(__file__).resolve().parents[3]
_OWN_TOKEN: Any = object()  # "use the client's token"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class StandInClient:
    def __init__(self, base_url: str, token: str | None):
        self.base_url = base_url.rstrip("/")
        self.token = token

    def raw(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Reply:
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Reply(
                    resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
                )
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: Any = _OWN_TOKEN,
        accept: str | None = ACCEPT,
    ) -> Reply:
        hdrs: dict[str, str] = {}
        if accept:
            hdrs["Accept"] = accept
        token = self.token if token is _OWN_TOKEN else token
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        return self.raw(method, self.base_url + path, data, hdrs)

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        reply = self.api(method, path, body, **kwargs)
        if reply.status >= 400:
            raise AssertionError(f"{method} {path} -> {reply.status}: {reply.body[:500]!r}")
        return reply.json()

    def admin(self, method: str, action: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
        reply = self.raw(
            method,
            f"{self.base_url}/__standin__/{action}",
            data,
            {"Content-Type": "application/json"},
        )
        if reply.status >= 400:
            raise AssertionError(f"admin {action} -> {reply.status}: {reply.body!r}")
        return reply.json()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self.admin("GET", f"requests?since={since}")

    def next_seq(self) -> int:
        return len(self.requests())

    def stream_text(self, url: str, timeout: float = 600) -> str:
        return self.raw("GET", url, timeout=timeout).body.decode("utf-8", "replace")

    def wait(self, fetch: Any, done: Any, timeout: float = 60, interval: float = 0.3) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = fetch()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; last value: {value!r}")
            time.sleep(interval)


class StandInProcess:
    """Start a stand-in with `start` and stop it (and everything it runs) with `stop`."""

    def __init__(
        self, state_dir: Path, port: int, token: str, *extra: str, python: str = sys.executable
    ):
        self.state_dir, self.port, self.token = state_dir, port, token
        self.extra, self.python = list(extra), python
        self.client = StandInClient(f"http://127.0.0.1:{port}", token)

    def start(self) -> StandInClient:
        env = dict(os.environ, HEROKU_API_KEY=self.token)
        subprocess.run(
            [
                self.python,
                "-m",
                "tests.standins.heroku_api",
                "start",
                "--port",
                str(self.port),
                "--state-dir",
                str(self.state_dir),
                *self.extra,
            ],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            timeout=120,
        )
        return self.client

    def stop(self, remove: bool = True) -> None:
        subprocess.run(
            [
                self.python,
                "-m",
                "tests.standins.heroku_api",
                "stop",
                "--state-dir",
                str(self.state_dir),
                *(["--remove"] if remove else []),
            ],
            cwd=REPO_ROOT,
            check=True,
            timeout=180,
        )
