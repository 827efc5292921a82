"""local_dyno: its env files, its fingerprint and its pid file."""

import json
import os

import pytest

from tests.unit.conftest import load_module
from tests.unit.plugins.modules._helpers import run_module


def _stop(tmp_path) -> dict:
    """local_dyno, state=stopped, with its source, state and venv in tmp_path."""
    return run_module(
        "local_dyno",
        {
            "source_dir": str(tmp_path),
            "state_dir": str(tmp_path),
            "venv_dir": str(tmp_path / "venv"),
            "state": "stopped",
        },
    )


def test_env_file_parsing_and_errors(tmp_path):
    dyno = load_module("local_dyno")
    env = tmp_path / "env"
    env.write_text("# comment\n\nPORT=5000\nALLOWED_HOSTS=a,b\nURL=postgres://u:p@h/d?x=1\n")
    assert dyno.read_env_file(str(env)) == {
        "PORT": "5000",
        "ALLOWED_HOSTS": "a,b",
        "URL": "postgres://u:p@h/d?x=1",
    }
    env.write_text("NOT AN ASSIGNMENT\n")
    with pytest.raises(ValueError, match="env:1 is not KEY=VALUE"):
        dyno.read_env_file(str(env))


def test_fingerprint_follows_the_app_and_its_config(tmp_path):
    dyno = load_module("local_dyno")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "views.py").write_text("a = 1\n")
    (tmp_path / "Procfile").write_text("web: bin/dyno\n")
    config = tmp_path / "env"
    config.write_text("PORT=5000\n")
    first = dyno.fingerprint(str(tmp_path), [str(config)])
    (tmp_path / "app" / "db.sqlite3").write_text("data changes all the time")
    assert dyno.fingerprint(str(tmp_path), [str(config)]) == first
    (tmp_path / "app" / "views.py").write_text("a = 2\n")
    second = dyno.fingerprint(str(tmp_path), [str(config)])
    assert second != first
    config.write_text("PORT=5001\n")
    assert dyno.fingerprint(str(tmp_path), [str(config)]) != second


def test_stopped_with_nothing_running_changes_nothing(tmp_path):
    result = _stop(tmp_path)
    assert (result["changed"], result["action"]) == (False, "unchanged")


def test_a_stale_pid_file_is_not_trusted(tmp_path):
    dyno = load_module("local_dyno")
    (tmp_path / "dyno.pid").write_text(json.dumps({"pid": os.getpid(), "start_time": "1"}))
    result = _stop(tmp_path)
    # The pid is alive (it is this test) but started at another time: not ours.
    assert result["action"] == "unchanged"
    assert dyno.start_time(os.getpid()) is not None
