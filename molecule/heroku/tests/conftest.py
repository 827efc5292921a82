"""What the heroku scenario's checks share: the stand-in, its request log, the runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.standins.heroku_api.client import StandInClient  # noqa: E402

API_URL = "http://127.0.0.1:5500"
APP = "double-boiler-molecule"
STATE_DIR = Path("/tmp/double-boiler-molecule-heroku")


def _token() -> str:
    token = os.environ.get("HEROKU_API_KEY")
    if not token:
        pytest.fail("HEROKU_API_KEY is not in the verifier's environment (molecule.yml env)")
    return token


@pytest.fixture(scope="session")
def token() -> str:
    return _token()


@pytest.fixture(scope="session")
def api(token: str) -> StandInClient:
    return StandInClient(API_URL, token)


def converge_runs(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The request log cut at each "converge" mark: one list of requests per run."""
    runs: list[list[dict[str, Any]]] = []
    for entry in entries:
        if entry["kind"] == "mark" and entry.get("label") == "converge":
            runs.append([])
        elif runs:
            runs[-1].append(entry)
    return runs


def writes(run: list[dict[str, Any]]) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in run if e["writes"] and e["kind"] != "mark"]


def run_converge(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 1500,
    playbook: str = "converge.yml",
) -> subprocess.CompletedProcess[str]:
    """Run a playbook of the scenario (its converge by default) as molecule does, capturing all."""
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    base = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    base["ANSIBLE_ROLES_PATH"] = str(PROJECT / "roles")
    return subprocess.run(
        ["ansible-playbook", "-i", f"{ephemeral}/inventory", str(SCENARIO / playbook), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else base,
        timeout=timeout,
        cwd=PROJECT,
    )


def converge_env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["ANSIBLE_ROLES_PATH"] = str(PROJECT / "roles")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def http_json(url: str, data: bytes | None = None, timeout: float = 10) -> tuple[int, Any]:
    import json

    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def wait_for(fetch, done, timeout: float = 60, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value {value!r}")
        time.sleep(interval)


class Proc:
    def __init__(self, pid: int, ppid: int, args: str) -> None:
        self.pid, self.ppid, self.args = pid, ppid, args

    def __repr__(self) -> str:
        return f"Proc({self.pid}, {self.ppid}, {self.args!r})"


def process_table() -> dict[int, Proc]:
    """Every process from /proc: pid, parent, command line (as setproctitle left it)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        args = cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        table[int(entry.name)] = Proc(int(entry.name), ppid, args)
    return table


def descendants(pid: int) -> list[Proc]:
    table = process_table()
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child.pid)
    return found
