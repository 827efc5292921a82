"""Run the Dokku stand-in as a command, in a throw-away Dokku root, without Docker or systemd."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOKKU = Path(__file__).resolve().parents[1] / "dokku"
# The stand-in's package, for the tests that call its parts directly.
sys.path.insert(0, str(DOKKU.parent))


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class Standin:
    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.root = base / "home"
        self.lib = base / "lib"
        self.port = port
        self.config = base / "config.json"
        self.root.mkdir()
        self.lib.mkdir()
        (self.lib / "VERSION").write_text("0.38.27\n")
        self.settings = {
            "dokku_root": str(self.root),
            "lib_root": str(self.lib),
            "supervisor": "process",
            "port": port,
            "nginx": False,
            "postgres": False,
            "redis": False,
            "hosts_file": str(base / "hosts"),
            "checks_default_wait": 1,
            "pip_cache_dir": str(base / "pip-cache"),
        }
        self.write_settings()

    def write_settings(self, **changes: object) -> None:
        self.settings.update(changes)
        self.config.write_text(json.dumps(self.settings))

    def __call__(
        self, *args: str, stdin: bytes | str | None = None, env: dict | None = None
    ) -> Result:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOKKU_")}
        full_env["DOKKU_STANDIN_CONFIG"] = str(self.config)
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, str(DOKKU), *args],
            input=data if data is not None else b"",
            capture_output=True,
            env=full_env,
            timeout=600,
            check=False,
        )
        return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dokku(tmp_path: Path):
    standin = Standin(tmp_path, free_port())
    yield standin
    # Stop whatever a test deployed (detached supervisors would outlive the test).
    for app in json.loads(standin("apps:list", "--format", "json").stdout or "[]"):
        standin("apps:destroy", app, "--force")
