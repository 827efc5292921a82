"""Fixtures for the stand-in's own tests.

The stand-ins started here take free ports next to (not on) the ones the Molecule
scenario uses, so both can run on one machine: API from 5501, dynos in 5650-5699
(the stand-in skips ports in use), PostgreSQL from 25433, Redis from 26380.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.heroku_api.client import StandInClient, StandInProcess
from tests.standins.heroku_api.schema import HyperSchema, load_schema, schema_path

TOKEN = "standin-test-token-" + uuid.uuid4().hex
# Heroku's figures are 30 s (H12) and about 3 minutes (preboot's switch): the tests
# use short ones so that both are seen in seconds (test_router.py).
ROUTER_TIMEOUT = 4.0
PREBOOT_DELAY = 3.0


def _require_schema() -> Path:
    path = schema_path()
    if not path.is_file():
        pytest.skip(
            f"Heroku Platform API schema not found at {path}: set HEROKU_API_SCHEMA or provide "
            "../shared/heroku/platform-api.schema.json to run the stand-in's tests"
        )
    return path


@pytest.fixture(scope="session")
def schema_file() -> Path:
    """The schema's path; skips the test when it is absent."""
    return _require_schema()


@pytest.fixture(scope="session")
def hyper_schema() -> HyperSchema:
    return HyperSchema(load_schema(_require_schema()))


def free_port(candidates: range) -> int:
    """The first port of ``candidates`` nothing listens on (127.0.0.1)."""
    for port in candidates:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {candidates.start}-{candidates.stop - 1}")


def _state_dir(prefix: str) -> Path:
    # Under /tmp: the postgres user must be able to traverse to the cluster.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def standin_process() -> Iterator[StandInProcess]:
    _require_schema()
    state = _state_dir("heroku-standin-pytest-")
    proc = StandInProcess(
        state,
        free_port(range(5501, 5600)),
        TOKEN,
        "--dyno-ports",
        "5650-5689",
        "--postgres-port",
        str(free_port(range(25433, 25480))),
        "--redis-port",
        str(free_port(range(26380, 26430))),
        "--addon-delay",
        "1",
        "--stop-timeout",
        "4",
        "--boot-timeout",
        "8",
        "--router-timeout",
        str(ROUTER_TIMEOUT),
        "--preboot-delay",
        str(PREBOOT_DELAY),
    )
    try:
        client = proc.start()
        yield proc
        # Whatever the tests sent, every answer must have validated against targetSchema
        # and no stand-in thread may have failed.
        bad = [
            e for e in client.requests() if any(v.startswith("response:") for v in e["violations"])
        ]
        assert bad == [], f"answers that did not validate: {bad}"
        assert client.admin("GET", "health")["internal_errors"] == []
    finally:
        proc.stop(remove=True)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def standin(standin_process: StandInProcess) -> StandInClient:
    return standin_process.client


@pytest.fixture
def app_name(standin: StandInClient) -> Iterator[str]:
    """A fresh app for one test, deleted afterwards (its dynos stop, its port is freed)."""
    name = "t-" + uuid.uuid4().hex[:12]
    standin.ok("POST", "/apps", {"name": name})
    yield name
    standin.api("DELETE", f"/apps/{name}")
