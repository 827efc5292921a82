"""Fixtures for the stand-in's own tests.

The stand-ins started here use ports next to (not on) the ones the Molecule
scenario uses, so both can run on one machine: API 5501/5502, dynos 5650-5699,
PostgreSQL 55433, Redis 56380.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.heroku_api.client import StandInClient, StandInProcess
from tests.standins.heroku_api.schema import HyperSchema, load_schema, schema_path

TOKEN = "standin-test-token-" + uuid.uuid4().hex


def _require_schema() -> Path:
    path = schema_path()
    if not path.is_file():
        pytest.skip(
            f"Heroku Platform API schema not found at {path}: set HEROKU_API_SCHEMA or provide "
            "../shared/heroku/platform-api.schema.json to run the stand-in's tests"
        )
    return path


@pytest.fixture(scope="session")
def hyper_schema() -> HyperSchema:
    return HyperSchema(load_schema(_require_schema()))


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
        5501,
        TOKEN,
        "--dyno-ports",
        "5680-5689",
        "--postgres-port",
        "55433",
        "--redis-port",
        "56380",
        "--addon-delay",
        "1",
        "--stop-timeout",
        "4",
        "--boot-timeout",
        "8",
    )
    client = proc.start()
    try:
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
